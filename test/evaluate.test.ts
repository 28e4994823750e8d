// Test-time-scaling evaluation: result rows, exits, batching and thread invariance, the table
// and the plot.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../src/data/example.ts";
import { buildCharTokenizer } from "../src/data/tokenizer.ts";
import { type RavenModel, initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import {
  decodeJob,
  evaluate,
  formatTable,
  planDecodeJobs,
  summarize,
  type Prediction,
} from "../src/train/evaluate.ts";
import { evaluateOnThreads } from "../src/node/parallel-eval.ts";
import { accuracyPlot } from "../cli/commands/eval.ts";
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

/** Each example's decoded answer ids at r = 2, batching as `batchSize` says. */
function decodedIds(model: RavenModel, batchSize: number, seed: number): number[][] {
  const jobs = planDecodeJobs(tok, examples, [2], batchSize);
  const ids: number[][] = [];
  for (const job of jobs) {
    decodeJob(model, job, { seed }).forEach((row, k) => (ids[job.rows[k]] = row.ids));
  }
  return ids;
}

test("an example's answer depends on its own initial state only, not on its batch", () => {
  const model = initModel(tinyConfig(tok.vocabSize, { stateInit: "like-init" }), new Rng(4));
  const alone = decodedIds(model, 1, 0);
  assert.deepEqual(decodedIds(model, 64, 0), alone);
  assert.notDeepEqual(decodedIds(model, 64, 1), alone, "the state is random: seeds differ");
});

test("evaluation on worker threads gives the rows of one thread", async () => {
  const model = initModel(tinyConfig(tok.vocabSize, { stateInit: "like-init" }), new Rng(5));
  const o = { steps: [1, 3], batchSize: 1, seed: 2 };
  const one = evaluate(model, tok, examples, o);
  const done: number[] = [];
  const two = await evaluateOnThreads(
    model,
    tok,
    examples,
    { ...o, onProgress: (job) => done.push(job.rows.length * job.r) },
    2,
  );
  assert.deepEqual(two, one);
  assert.equal(
    done.reduce((a, b) => a + b, 0),
    examples.length * (1 + 3),
  );
});

test("whole predictions go past the first wrong token and leave the scores as they are", async () => {
  const model = initModel(tinyConfig(tok.vocabSize, { stateInit: "like-init" }), new Rng(6));
  const collect = async (whole: boolean, threads: number) => {
    const predictions: Prediction[] = [];
    const o = { steps: [1, 3], batchSize: 2, seed: 1, whole };
    const rows = await evaluateOnThreads(
      model,
      tok,
      examples,
      { ...o, onPrediction: (p) => predictions.push(p) },
      threads,
    );
    return { rows, predictions };
  };
  const cut = await collect(false, 1);
  const whole = await collect(true, 1);
  assert.deepEqual(whole.rows, cut.rows);
  assert.deepEqual(await collect(true, 2), whole, "worker threads decode whole rows too");
  assert.deepEqual(
    whole.predictions.map((p) => [p.steps, p.index]),
    [1, 3].flatMap((r) => examples.map((_, i) => [r, i])),
  );
  let longer = 0;
  whole.predictions.forEach((p, k) => {
    const answer = examples[p.index].answer;
    const short = cut.predictions[k];
    assert.equal(p.correct, p.prediction === answer);
    assert.equal(short.correct, p.correct);
    assert.ok(p.prediction.startsWith(short.prediction));
    if (p.prediction.length > short.prediction.length) longer++;
    const n = p.tokenSteps.length; // up to its <eos>, one past the answer at most
    assert.ok(n >= 1 && n <= answer.length + 1);
    assert.ok(p.tokenSteps.every((s) => s === p.steps));
  });
  assert.ok(longer > 0, "some wrong answer goes on after its first wrong token");
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

test("the accuracy plot: one colour per difficulty, easy to hard, and black for all", () => {
  const rowsOf = (levels: number[]) =>
    [...levels, null].map((difficulty) => ({
      steps: 1,
      difficulty,
      accuracy: 0.5,
      count: 1,
      meanSteps: 1,
    }));
  for (const n of [3, 12]) {
    const levels = Array.from({ length: n }, (_, i) => n - i); // unsorted on purpose
    const { encoding } = accuracyPlot(rowsOf(levels), "t") as {
      encoding: { color: { scale: { domain: string[]; range: string[] } } };
    };
    const { domain, range } = encoding.color.scale;
    assert.deepEqual(domain, [...levels.map(String).sort((a, b) => +a - +b), "all"]);
    assert.equal(range.length, n + 1);
    assert.equal(range[n], "black");
    assert.equal(new Set(range).size, n + 1, "distinct colours");
  }
});
