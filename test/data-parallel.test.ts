// Data-parallel training: shards cover the batch, the weighted shard gradients are the one-thread
// gradient, and N threads (worker_threads) train the same run as one thread, up to float rounding,
// and evaluate it between steps exactly as one thread does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeExample } from "../src/data/example.ts";
import { generateTask } from "../src/data/tasks/index.ts";
import { buildCharTokenizer } from "../src/data/tokenizer.ts";
import { namedParameters } from "../src/model/checkpoint.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { initModel, initializeState } from "../src/model/model.ts";
import { startGradientWorkers } from "../src/node/data-parallel.ts";
import { Rng } from "../src/tensor/random.ts";
import { tensor } from "../src/tensor/tensor.ts";
import { shardRows, shardStateInits, sliceBatch } from "../src/train/data-parallel.ts";
import { evaluate } from "../src/train/evaluate.ts";
import { type Recipe, defaultRecipe } from "../src/train/recipe.ts";
import {
  type TrainData,
  type TrainState,
  createTrainState,
  localGradient,
  planTrainStep,
  stateInitAt,
  trainLoop,
} from "../src/train/trainer.ts";
import { assertClose, maxAbs, tinyConfig } from "./helpers.ts";

const examples = generateTask("parity", {
  split: "train",
  count: 64,
  seed: 0,
  difficulties: [2, 5],
});
const tok = buildCharTokenizer(examples.flatMap((e) => [e.prompt, e.answer]));
const data: TrainData = { kind: "examples", encoded: examples.map((e) => encodeExample(tok, e)) };
const recipe: Recipe = { ...defaultRecipe, batchSize: 11, lr: 3e-3, supervisedDepths: 2 };

function config(over: Partial<ModelConfig> = {}): ModelConfig {
  const depth = { meanRecurrence: 3, meanBackpropDepth: 2 };
  return tinyConfig(tok.vocabSize, { blockSize: 32, ...depth, ...over });
}

function grads(state: TrainState): Float32Array[] {
  return namedParameters(state.model.params).map(
    ([, t]) => t.grad?.slice() ?? new Float32Array(t.size),
  );
}

/** Every array within `tol` of the largest reference value, in relative terms. */
function assertNear(a: Float32Array[], b: Float32Array[], tol: number, what: string): void {
  const scale = Math.max(...b.map(maxAbs));
  assert.ok(scale > 0, `${what}: the reference is all zeros`);
  a.forEach((x, i) => {
    assertClose(x, b[i], tol * scale, `${what}, parameter ${i}`);
  });
}

test("shardRows: contiguous, covering, as even as can be, never empty", () => {
  assert.deepEqual(shardRows(11, 3), [
    { start: 0, end: 4 },
    { start: 4, end: 8 },
    { start: 8, end: 11 },
  ]);
  assert.deepEqual(shardRows(2, 4), [
    { start: 0, end: 1 },
    { start: 1, end: 2 },
  ]);
  assert.deepEqual(shardRows(5, 1), [{ start: 0, end: 5 }]);
});

test("shardStateInits: a shard of a random initial state is the whole batch's rows", () => {
  const model = initModel(config({ stateInit: "like-init" }), new Rng(2));
  const state = createTrainState(model, recipe, 7, 10);
  const { batch } = planTrainStep(state, recipe, data);
  const C = model.config.nEmbd;
  const whole = initializeState(
    model,
    tensor(new Float32Array(batch.batch * batch.seqLen * C), [batch.batch, batch.seqLen, C]),
    stateInitAt(model, 7, 0),
  );
  const shards = shardRows(batch.batch, 3);
  const inits = shardStateInits(model, 7, 0, batch, shards);
  const row = batch.seqLen * C;
  shards.forEach((shard, s) => {
    const init = inits[s];
    assert.equal(init.mode, "given");
    assert.deepEqual(init.state.data, whole.data.slice(shard.start * row, shard.end * row));
    assert.deepEqual(
      sliceBatch(batch, shard).labels,
      batch.labels.slice(shard.start * batch.seqLen, shard.end * batch.seqLen),
    );
  });
});

const abacus = { abacusPlaces: 16, abacusDigits: tok.digitIds() };
for (const [what, over] of [
  ["state init zero", { stateInit: "zero" }],
  ["state init like-init", { stateInit: "like-init" }],
  ["Abacus places at random offsets", abacus],
] as const) {
  test(`3 threads compute the one-thread gradient (${what})`, async () => {
    const model = initModel(config(over), new Rng(4));
    const state = createTrainState(model, recipe, 3, 10);
    const plan = planTrainStep(state, recipe, data);
    const one = localGradient(state, recipe, plan);
    const reference = grads(state);
    const workers = await startGradientWorkers(model, 3);
    try {
      const three = await workers.gradient(state, recipe, plan);
      assert.ok(Math.abs(three.objective - one.objective) < 1e-5 * one.objective);
      assert.ok(Math.abs(three.finalLoss - one.finalLoss) < 1e-5 * one.finalLoss);
      assertNear(grads(state), reference, 1e-5, "3-thread gradient");
    } finally {
      await workers.close();
    }
  });
}

test("2 threads train the run one thread trains (losses and weights to float rounding)", async () => {
  const N = 8;
  const run = async (threads: number) => {
    const state = createTrainState(initModel(config(), new Rng(5)), recipe, 11, N);
    const losses: number[] = [];
    const workers = threads > 1 ? await startGradientWorkers(state.model, threads) : null;
    try {
      await trainLoop(state, recipe, data, {
        shouldStop: () => false,
        ...(workers !== null ? { gradient: workers.gradient } : {}),
        onStep: (m) => {
          losses.push(m.loss);
        },
      });
    } finally {
      await workers?.close();
    }
    return { losses, weights: namedParameters(state.model.params).map(([, t]) => t.data) };
  };
  const one = await run(1);
  const two = await run(2);
  assert.equal(two.losses.length, N);
  two.losses.forEach((l, i) => {
    assert.ok(
      Math.abs(l - one.losses[i]) < 1e-4 * one.losses[i],
      `step ${i + 1}: ${l} vs ${one.losses[i]}`,
    );
  });
  assertNear(two.weights, one.weights, 1e-4, "weights after 8 steps");
});

test("a data-parallel run evaluates on its workers and this thread: the rows of evaluate", async () => {
  const state = createTrainState(initModel(config(), new Rng(6)), recipe, 12, 3);
  const held = generateTask("parity", { split: "test", count: 24, seed: 1, difficulties: [2, 6] });
  const o = { steps: [1, 2, 4], batchSize: 4, seed: 1 };
  const workers = await startGradientWorkers(state.model, 2);
  const compared: number[] = [];
  try {
    await trainLoop(state, recipe, data, {
      shouldStop: () => false,
      gradient: workers.gradient,
      onStep: async (_, st) => {
        const pooled = await workers.evaluate(st.model, tok, held, o);
        assert.deepEqual(pooled, evaluate(st.model, tok, held, o), `step ${st.step}`);
        compared.push(st.step);
      },
    });
  } finally {
    await workers.close();
  }
  assert.deepEqual(compared, [1, 2, 3]);
});
