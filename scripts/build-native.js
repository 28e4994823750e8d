// `npm install` step: build the native backend (native/ -> native/build/Release/loom_native.node)
// with the node-gyp that ships with npm. Never fails the install: when the build is impossible
// it prints one line and loom uses the TypeScript backend. The full log is kept in
// native/build/build.log, and the reason in native/build/error.txt, where `loadNativeBackend`
// (src/node/native.ts) reads it to say why the addon is missing.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const buildDir = join(root, "native", "build");

/** node-gyp's bin script: npm's own (npm sets npm_config_node_gyp), else next to node, else a dependency. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  ];
  const found = candidates.find((p) => p && existsSync(p));
  if (found) return found;
  try {
    return createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js");
  } catch {
    return undefined;
  }
}

/** The first line of the log that says what went wrong. */
function reasonFrom(log, status) {
  const lines = log.split("\n").map((l) => l.trim());
  const line =
    lines.find((l) => /\berror\b/i.test(l) && !l.startsWith("gyp ERR!")) ??
    lines.find((l) => l.startsWith("gyp ERR! stack Error:")) ??
    lines.find(
      (l) => l.startsWith("gyp ERR!") && !/^gyp ERR! (configure|build) error\s*$/.test(l),
    ) ??
    `node-gyp exited with status ${status}`;
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

function build() {
  const gyp = findNodeGyp();
  if (!gyp) return { error: "node-gyp not found (it ships with npm)" };
  const args = [gyp, "rebuild", "--directory", join(root, "native")];
  // Without a nodedir, node-gyp downloads the Node headers; use the local ones when present.
  const localHeaders = join(dirname(process.execPath), "..", "include", "node");
  if (!process.env.npm_config_nodedir && existsSync(join(localHeaders, "node_api.h"))) {
    args.push(`--nodedir=${join(localHeaders, "..", "..")}`);
  }
  const run = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 300_000 });
  const log = `${run.stdout ?? ""}${run.stderr ?? ""}${run.error ? String(run.error) : ""}`;
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, "build.log"), log);
  if (run.status === 0 && existsSync(join(buildDir, "Release", "loom_native.node"))) return {};
  return { error: `${reasonFrom(log, run.status)}; see native/build/build.log` };
}

const { error } = build();
if (error) {
  writeFileSync(join(buildDir, "error.txt"), `${error}\n`);
  console.log(`loom: native backend not built (${error}); using the TypeScript backend`);
}
