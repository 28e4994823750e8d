// `npm test`: node:test over every test/**/*.test.ts (node 20 neither finds .ts files nor expands
// globs by itself). Extra arguments are passed through, e.g. `npm test -- --test-name-pattern=rope`.
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

const files = findTests("test").sort();
if (files.length === 0) {
  console.error("npm test: no test/**/*.test.ts found");
  process.exit(1);
}
const args = ["--import", "tsx", "--test", ...process.argv.slice(2), ...files];
const run = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(run.status ?? 1);
