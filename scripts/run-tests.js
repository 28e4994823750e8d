// `npm test`: node:test over every test/**/*.test.ts (node 20 neither finds .ts files nor expands
// globs by itself), on the backend test/setup-backend.ts selects. Arguments ending in .test.ts
// pick the files; others pass through, e.g. `npm test -- --test-name-pattern=rope`.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return findTests(path);
    return e.name.endsWith(".test.ts") ? [path] : [];
  });
}

const picked = process.argv.slice(2).filter((a) => a.endsWith(".test.ts"));
const passThrough = process.argv.slice(2).filter((a) => !a.endsWith(".test.ts"));
const files = picked.length > 0 ? picked : findTests("test").sort();
if (files.length === 0) {
  console.error("npm test: no test/**/*.test.ts found");
  process.exit(1);
}
const setup = "./test/setup-backend.ts";
const args = ["--import", "tsx", "--import", setup, "--test", ...passThrough, ...files];
const run = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(run.status ?? 1);
