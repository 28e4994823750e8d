// `loom serve DIR`: the trajectory viewer (web/) and a trace directory over HTTP, on 127.0.0.1
// only. GET / is web/index.html, /viewer.js is web/viewer.ts compiled by esbuild (types
// stripped), everything else is a file of DIR (trajectory.json, report.html, *.png).
import { readFileSync, statSync } from "node:fs";
import { type ServerResponse, createServer } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";
import { CliError, need, num } from "../args.ts";
import type { Command } from "../command.ts";

const WEB = fileURLToPath(new URL("../../web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".css": "text/css; charset=utf-8",
};

let viewerCache: string | null = null;

/** web/viewer.ts as a browser ES module (esbuild transform: no bundling, type imports vanish). */
export async function compileViewer(): Promise<string> {
  if (viewerCache !== null) return viewerCache;
  const source = readFileSync(join(WEB, "viewer.ts"), "utf8");
  const out = await transform(source, { loader: "ts", format: "esm", target: "es2022" });
  viewerCache = out.code;
  return out.code;
}

export const serveCommand: Command = {
  positional: "dir",
  name: "serve",
  summary: "serve the trajectory viewer and a `loom trace` directory on 127.0.0.1",
  usage: "loom serve DIR [--port 8080]   (or --dir DIR; --port 0: any free port)",
  flags: {
    dir: { type: "string", help: "a directory written by `loom trace`", required: true },
    port: { type: "int", help: "TCP port on 127.0.0.1", default: 8080 },
  },
  async run({ flags }) {
    const dir = resolve(need("serve", flags, "dir"));
    if (!statSync(dir).isDirectory()) throw new CliError(`loom serve: ${dir} is not a directory`);
    const server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://127.0.0.1").pathname);
      respond(dir, path, res).catch((err: unknown) => {
        send(res, 500, "text/plain", `error: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(num(flags, "port") ?? 8080, "127.0.0.1", ok);
    });
    const addr = server.address();
    const port = typeof addr === "object" && addr !== null ? addr.port : 0;
    console.log(`loom serve: http://127.0.0.1:${port}/ (serving ${dir}; Ctrl-C to stop)`);
    await new Promise<void>((done) => {
      const stop = (): void => {
        server.close(() => {
          done();
        });
        server.closeAllConnections();
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  },
};

async function respond(dir: string, path: string, res: ServerResponse): Promise<void> {
  if (path === "/" || path === "/index.html") {
    send(res, 200, TYPES[".html"], readFileSync(join(WEB, "index.html")));
    return;
  }
  if (path === "/viewer.js") {
    send(res, 200, TYPES[".js"], await compileViewer());
    return;
  }
  const file = normalize(join(dir, path));
  if (!file.startsWith(dir + sep)) {
    send(res, 403, "text/plain", "forbidden");
    return;
  }
  let body: Buffer;
  try {
    body = readFileSync(file);
  } catch {
    send(res, 404, "text/plain", `not found: ${path}`);
    return;
  }
  send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", body);
}

function send(res: ServerResponse, code: number, type: string, body: string | Buffer): void {
  res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}
