// `loom demo` end to end: the report folder, and its "Reproduce" line giving the same table.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runLoom } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "loom-demo-cli-"));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Row {
  steps: number;
  difficulty: number | null;
  accuracy: number;
  count: number;
}

function rows(file: string): Row[] {
  return (JSON.parse(readFileSync(file, "utf8")) as { results: Row[] }).results;
}

test("loom demo writes its report, and `loom eval` on its test.jsonl reproduces the table", () => {
  const out = join(dir, "report");
  const demo = runLoom([
    ...["demo", "--task", "parity", "--time-budget", "4s", "--count", "3", "--steps", "1,3"],
    ...["--out", out],
  ]);
  assert.equal(demo.status, 0, demo.stderr);
  for (const f of ["README.md", "accuracy-vs-r.png", "results.json", "test.jsonl", "model"]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  const config = JSON.parse(readFileSync(join(out, "model", "config.json"), "utf8")) as {
    attention_window?: number;
  };
  assert.equal(config.attention_window, 2, "the demo trains the windowed (scanning) model");
  const trainer = readFileSync(join(out, "model", "trainer-state.json"), "utf8");
  assert.equal((JSON.parse(trainer) as { recipe: { lr: number } }).recipe.lr, 0.001);
  const shown = rows(join(out, "results.json"));
  assert.equal(shown.length, 2 * (17 + 1), "r = 1, 3 × (lengths 4-20 and all)");
  assert.ok(demo.stdout.includes(" all"), "the table is printed");
  assert.match(
    demo.stdout + demo.stderr,
    /note: this machine trained \d+ steps in [0-9ms]+; .* --time-budget 8s\)/,
    "a run too short to find the scan says so",
  );

  const readme = readFileSync(join(out, "README.md"), "utf8");
  const command = /Reproduce: `loom (eval [^`]+)`/.exec(readme);
  assert.ok(command, "README has a Reproduce line");
  const again = join(dir, "again.json");
  const ev = runLoom([...command[1].split(" "), "--json", again]);
  assert.equal(ev.status, 0, ev.stderr);
  assert.deepEqual(
    rows(again).map((r) => [r.steps, r.difficulty, r.accuracy, r.count]),
    shown.map((r) => [r.steps, r.difficulty, r.accuracy, r.count]),
  );
});
