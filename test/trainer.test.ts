// The trainer: truncated-backprop gradient invariants, a short run that lowers the loss, the
// depth schedule's statistics, and bit-exact resume through a checkpoint on disk.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { encodeExample } from "../src/data/example.ts";
import { generateTask } from "../src/data/tasks/index.ts";
import { buildCharTokenizer } from "../src/data/tokenizer.ts";
import { namedParameters } from "../src/model/checkpoint.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { loadCheckpoint, saveCheckpoint } from "../src/node/checkpoint-io.ts";
import { Rng } from "../src/tensor/random.ts";
import { backward } from "../src/tensor/tensor.ts";
import { fitTotalSteps, stepCost } from "../src/train/budget.ts";
import { type Recipe, defaultRecipe, drawDepth } from "../src/train/recipe.ts";
import {
  type TrainData,
  type TrainState,
  batchAt,
  batchLoss,
  createTrainState,
  curriculumCeiling,
  depthAt,
  levelAt,
  planStep,
  trainLoop,
  trainStep,
} from "../src/train/trainer.ts";
import { tinyConfig as tinyModelConfig } from "./helpers.ts";

const examples = generateTask("parity", {
  split: "train",
  count: 64,
  seed: 0,
  difficulties: [2, 3],
});
const tok = buildCharTokenizer(examples.flatMap((e) => [e.prompt, e.answer]));
const data: TrainData = { kind: "examples", encoded: examples.map((e) => encodeExample(tok, e)) };

/** Parity examples of the given lengths, with their difficulties (for curriculum tests). */
function parityData(count: number, seed: number, difficulties: number[]): TrainData {
  const ex = generateTask("parity", { split: "train", count, seed, difficulties });
  const t = buildCharTokenizer(ex.flatMap((e) => [e.prompt, e.answer]));
  return {
    kind: "examples",
    encoded: ex.map((e) => encodeExample(t, e)),
    difficulty: ex.map((e) => e.difficulty),
  };
}

function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return tinyModelConfig(tok.vocabSize, { meanRecurrence: 3, meanBackpropDepth: 2, ...over });
}

const recipe: Recipe = { ...defaultRecipe, batchSize: 8, lr: 3e-3, supervisedDepths: 2 };

test("gradSteps = 0: prelude, adapter and core get exactly zero gradient; coda and head do not", () => {
  const model = initModel(tinyConfig({ injectionType: "linear" }), new Rng(1));
  const batch = batchAt(data, recipe, 0, 0);
  const { objective } = batchLoss(model, batch, {
    depth: { noGradSteps: 3, gradSteps: 0 },
    supervisedDepths: 2,
    init: { mode: "like-init", rng: new Rng(2) },
  });
  backward(objective);
  let codaNonZero = false;
  for (const [key, t] of namedParameters(model.params)) {
    const g = t.grad ?? new Float32Array(t.size);
    const zero = g.every((x) => x === 0);
    if (/prelude|adapter|core_block/.test(key)) assert.ok(zero, `${key} has a gradient`);
    if (key.includes("coda") && !zero) codaNonZero = true;
  }
  assert.ok(codaNonZero, "the coda should get a gradient");
});

test("gradSteps = k: the core and adapter get gradient; only the last k iterations matter", () => {
  const model = initModel(tinyConfig({ injectionType: "linear" }), new Rng(1));
  const batch = batchAt(data, recipe, 0, 0);
  const { objective } = batchLoss(model, batch, {
    depth: { noGradSteps: 2, gradSteps: 1 },
    supervisedDepths: 1,
    init: { mode: "zero" },
  });
  backward(objective);
  const adapter = namedParameters(model.params).find(([k]) => k === "transformer.adapter.weight");
  assert.ok(adapter?.[1].grad?.some((x) => x !== 0));
  const core = namedParameters(model.params).filter(([k]) => k.includes("core_block"));
  assert.ok(core.every(([, t]) => t.grad?.some((x) => x !== 0)));
});

test("uniform depth draws: total in [1, 2r̄-1] with mean ≈ r̄, k = min(k̄, total), deterministic", () => {
  let sum = 0;
  const n = 4000;
  for (let step = 0; step < n; step++) {
    const d = drawDepth("uniform", 8, 4, 7, step);
    const total = d.noGradSteps + d.gradSteps;
    assert.ok(total >= 1 && total <= 15);
    assert.equal(d.gradSteps, Math.min(4, total));
    sum += total;
  }
  assert.ok(Math.abs(sum / n - 8) < 0.2, `mean ${sum / n}`);
  assert.deepEqual(drawDepth("uniform", 8, 4, 7, 123), drawDepth("uniform", 8, 4, 7, 123));
  const fixed = drawDepth("fixed", 8, 4, 7, 5);
  assert.deepEqual(fixed, { noGradSteps: 4, gradSteps: 4 });
});

test("a short run lowers the loss", async () => {
  const model = initModel(tinyConfig(), new Rng(3));
  const state = createTrainState(model, recipe, 0, 30);
  const losses: number[] = [];
  await trainLoop(state, recipe, data, {
    shouldStop: () => false,
    onStep: (m) => {
      losses.push(m.loss);
    },
  });
  assert.equal(losses.length, 30);
  const first = (losses[0] + losses[1] + losses[2]) / 3;
  const last = (losses[27] + losses[28] + losses[29]) / 3;
  assert.ok(last < 0.6 * first, `loss ${first} -> ${last}`);
});

function weights(state: TrainState): Float32Array[] {
  return namedParameters(state.model.params).map(([, t]) => t.data.slice());
}

test("resume: N steps == N/2 steps, save, load, N/2 steps (bit-identical losses and weights)", async () => {
  const N = 6;
  const straight = createTrainState(initModel(tinyConfig(), new Rng(5)), recipe, 11, N);
  const lossesA: number[] = [];
  for (let i = 0; i < N; i++) lossesA.push(trainStep(straight, recipe, data).loss);

  const first = createTrainState(initModel(tinyConfig(), new Rng(5)), recipe, 11, N);
  const lossesB: number[] = [];
  await trainLoop(first, recipe, data, {
    shouldStop: (s) => s.step >= N / 2,
    onStep: (m) => {
      lossesB.push(m.loss);
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "loom-resume-"));
  try {
    const ckDir = join(dir, "run");
    saveCheckpoint(ckDir, {
      model: first.model,
      opt: first.opt,
      tokenizer: tok.toJSON(),
      state: {
        version: 1,
        step: first.step,
        totalSteps: first.totalSteps,
        seed: first.seed,
        tokens: first.tokens,
        elapsedSeconds: 0,
        recipe: { ...recipe },
        data: { kind: "test" },
        timeBudgetSeconds: null,
        finished: false,
        rng: { scheme: "seed-step", seed: first.seed, step: first.step },
      },
    });
    saveCheckpoint(ckDir, loadCheckpoint(ckDir)); // a second save replaces the first atomically
    const ck = loadCheckpoint(ckDir);
    const resumed: TrainState = {
      model: ck.model,
      opt: ck.opt,
      step: ck.state.step,
      totalSteps: ck.state.totalSteps,
      seed: ck.state.seed,
      tokens: ck.state.tokens,
    };
    while (resumed.step < N) lossesB.push(trainStep(resumed, recipe, data).loss);
    assert.deepEqual(lossesB, lossesA);
    const wa = weights(straight);
    const wb = weights(resumed);
    wa.forEach((w, i) => {
      assert.deepEqual(wb[i], w);
    });
    assert.equal(resumed.opt.step, straight.opt.step);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("curriculum: difficulties unlock easiest first in equal stages, then the full mix", () => {
  const levels = [1, 2, 3, 4];
  const at = (step: number) => curriculumCeiling(levels, 0.5, step, 800);
  assert.deepEqual([0, 99, 100, 199, 200, 300, 399, 400, 799].map(at), [
    1,
    1,
    2,
    2,
    3,
    Infinity,
    Infinity,
    Infinity,
    Infinity,
  ]);
  assert.equal(curriculumCeiling(levels, 0, 0, 800), Infinity); // off
  assert.equal(curriculumCeiling([], 0.5, 0, 800), Infinity); // no known difficulty
  // batches respect the ceiling, are deterministic, and the full mix returns after the ramp
  const curr = parityData(60, 1, [2, 5]);
  const r: Recipe = { ...recipe, curriculum: 0.5 };
  const early = batchAt(curr, r, 0, 3, 100);
  assert.equal(early.seqLen, 1 + 2 + 1 + 1); // <bos> 2 bits <sep> answer (inputs drop <eos>)
  assert.deepEqual(batchAt(curr, r, 0, 3, 100), early);
  const late = batchAt(curr, r, 0, 60, 100);
  assert.equal(late.seqLen, 1 + 5 + 1 + 1);
  assert.deepEqual(batchAt(curr, { ...recipe, curriculum: 0 }, 0, 3, 100).seqLen, 1 + 5 + 1 + 1);
});

test("difficulty depth scheme: one level per batch, unlocked levels only, depth in [c·d, 2c·d + 1]", () => {
  const curr = parityData(90, 2, [2, 3, 6]);
  const r: Recipe = {
    ...recipe,
    depthScheme: "difficulty",
    depthPerDifficulty: 1.5,
    curriculum: 0.6,
  };
  const model = initModel(tinyConfig(), new Rng(4));
  const seen = new Set<number>();
  for (let step = 0; step < 200; step++) {
    const level = levelAt(curr, r, 0, step, 200);
    assert.ok(level !== undefined);
    // the curriculum: 3 levels over the first 120 steps, 40 steps each
    if (step < 40) assert.equal(level, 2);
    if (step < 80) assert.ok(level <= 3);
    seen.add(level);
    const batch = batchAt(curr, r, 0, step, 200, level);
    assert.equal(batch.seqLen, 1 + level + 1 + 1); // every row has `level` bits
    const d = depthAt(model, r, 0, step, level);
    const total = d.noGradSteps + d.gradSteps;
    const base = Math.ceil(1.5 * level);
    assert.ok(total >= base && total <= 2 * base + 1, `level ${level}: total ${total}`);
    assert.equal(d.gradSteps, Math.min(2, total));
    assert.deepEqual(depthAt(model, r, 0, step, level), d); // a pure function of (seed, step)
  }
  assert.deepEqual([...seen].sort(), [2, 3, 6]);
  // other schemes, and data without difficulties, draw no level
  assert.equal(levelAt(curr, { ...recipe, depthScheme: "uniform" }, 0, 5, 200), undefined);
  assert.equal(levelAt(data, r, 0, 5, 200), undefined);
});

test("budget fit: the remaining steps are priced from their own schedule (curriculum included)", () => {
  const curr = parityData(200, 3, [2, 12]);
  const r: Recipe = { ...recipe, depthScheme: "difficulty", curriculum: 0.5 };
  const state = createTrainState(initModel(tinyConfig({ blockSize: 32 }), new Rng(6)), r, 0, 100);
  const costOf = (s: number, total: number): number => {
    const { depth, batch } = planStep(state.model, r, curr, 0, s, total);
    return stepCost(batch.batch * batch.seqLen, depth);
  };
  const budget = 400 * costOf(0, 100); // 400 steps' worth of the cheap first stage
  const total = fitTotalSteps(state, r, curr, budget, 1);
  let spent = 0;
  for (let s = 0; s < total; s++) spent += costOf(s, total);
  assert.ok(total < 400, `the later, dearer stage must shorten the run (${total} steps)`);
  assert.ok(
    Math.abs(spent / budget - 1) < 0.15,
    `the plan spends ${(spent / budget).toFixed(2)}x the budget`,
  );
});
