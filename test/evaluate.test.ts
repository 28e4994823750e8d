// Test-time-scaling evaluation: result rows, exits, batching invariance, the table.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../src/data/example.ts";
import { buildCharTokenizer } from "../src/data/tokenizer.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import { evaluate, evaluateAt, formatTable, summarize } from "../src/train/evaluate.ts";
import { tinyConfig } from "./helpers.ts";

const examples: Example[] = [
  { prompt: "ab", answer: "1", difficulty: 2 },
  { prompt: "abc", answer: "0", difficulty: 3 },
  { prompt: "ba", answer: "10", difficulty: 2 },
  { prompt: "cab", answer: "1", difficulty: 3 },
  { prompt: "c", answer: "0", difficulty: 1 },
];
const tok = buildCharTokenizer(examples.flatMap((e) => [e.prompt, e.answer]));
const config = tinyConfig(tok.vocabSize, { stateInit: "zero" });

test("one row per (steps, difficulty) plus difficulty null for all; meanSteps = r without exit", () => {
  const model = initModel(config, new Rng(0));
  const rows = evaluate(model, tok, examples, { steps: [1, 3] });
  assert.equal(rows.length, 2 * 4);
  for (const r of [1, 3]) {
    const at = rows.filter((x) => x.steps === r);
    assert.deepEqual(
      at.map((x) => x.difficulty),
      [1, 2, 3, null],
    );
    assert.deepEqual(
      at.map((x) => x.count),
      [1, 2, 2, 5],
    );
    for (const x of at) {
      assert.ok(x.accuracy >= 0 && x.accuracy <= 1);
      assert.equal(x.meanSteps, r);
    }
  }
  const table = formatTable(rows);
  assert.match(table, /all/);
  assert.equal(table.split("\n").length, 3);
});

test("exit criteria: a huge threshold exits after one step, zero never exits", () => {
  const model = initModel(config, new Rng(0));
  const early = evaluate(model, tok, examples, {
    steps: [4],
    exit: "latent-diff",
    exitThreshold: 1e9,
  });
  assert.ok(early.every((x) => x.meanSteps === 1));
  const never = evaluate(model, tok, examples, { steps: [4], exit: "kl", exitThreshold: 0 });
  assert.ok(never.every((x) => x.meanSteps === 4));
});

test("results do not depend on the batch size (deterministic state)", () => {
  const model = initModel(config, new Rng(4));
  const a = evaluateAt(model, tok, examples, 2, { batchSize: 1 });
  const b = evaluateAt(model, tok, examples, 2, { batchSize: 64 });
  assert.deepEqual(a, b);
});

test("summarize scores exact matches per difficulty", () => {
  const results = examples.map((_, i) => ({
    correct: i % 2 === 0,
    prediction: "",
    stepsUsed: 6,
    tokens: 2,
  }));
  const rows = summarize(examples, results, 5);
  const all = rows.find((r) => r.difficulty === null);
  assert.deepEqual(all, { steps: 5, difficulty: null, accuracy: 3 / 5, count: 5, meanSteps: 3 });
  assert.equal(rows.find((r) => r.difficulty === 2)?.accuracy, 1); // examples 0 and 2
  assert.equal(rows.find((r) => r.difficulty === 3)?.accuracy, 0); // examples 1 and 3
});
