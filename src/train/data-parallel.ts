/**
 * Data parallelism, the arithmetic half: a step's batch is cut into row shards, each thread
 * computes the gradient of its shard's objective, and the step's gradient is their mean weighted
 * by labelled tokens. The objective is a mean over the batch's labelled tokens (at each
 * supervised depth), so with N = Σ n_s tokens in all,
 *
 *   ∇L = Σ_s (n_s / N) ∇L_s,
 *
 * exactly the one-thread gradient up to float rounding (test/data-parallel.test.ts). Shards keep
 * the batch's padded length and their rows of its initial state, so each row sees the values it
 * would in the whole batch. Threads and messages live in src/node/data-parallel.ts.
 */
import type { Batch } from "../data/batches.ts";
import { namedParameters } from "../model/checkpoint.ts";
import { type RavenModel, type StateInitOption, initializeState } from "../model/model.ts";
import { tensor } from "../tensor/tensor.ts";
import type { DepthDraw } from "./depth-sampler.ts";
import { type StepGradient, batchGradient, stateInitAt } from "./trainer.ts";

/** Rows [start, end) of a batch. */
export interface Shard {
  start: number;
  end: number;
}

/** `rows` cut into at most `parts` contiguous shards, as even as can be (earlier ones larger). */
export function shardRows(rows: number, parts: number): Shard[] {
  const n = Math.max(1, Math.min(parts, rows));
  const shards: Shard[] = [];
  let start = 0;
  for (let s = 0; s < n; s++) {
    const size = Math.floor(rows / n) + (s < rows % n ? 1 : 0);
    shards.push({ start, end: start + size });
    start += size;
  }
  return shards;
}

/** The shard's rows of `batch` (B, T): same padded length T. */
export function sliceBatch(batch: Batch, { start, end }: Shard): Batch {
  const T = batch.seqLen;
  return {
    inputIds: batch.inputIds.slice(start * T, end * T),
    labels: batch.labels.slice(start * T, end * T),
    batch: end - start,
    seqLen: T,
  };
}

/**
 * The initial state of each shard of step `step`: zero, or the shard's rows of the whole batch's
 * seeded random state (B, T, C), drawn once, so each shard starts where those rows would.
 */
export function shardStateInits(
  model: RavenModel,
  seed: number,
  step: number,
  batch: Batch,
  shards: readonly Shard[],
): StateInitOption[] {
  const init = stateInitAt(model, seed, step);
  if (init.mode === "zero") return shards.map(() => init);
  const C = model.config.nEmbd;
  const shape = [batch.batch, batch.seqLen, C];
  const whole = initializeState(
    model,
    tensor(new Float32Array(shape[0] * shape[1] * C), shape),
    init,
  );
  const rowSize = batch.seqLen * C;
  return shards.map(({ start, end }) => ({
    mode: "given",
    state: tensor(whole.data.slice(start * rowSize, end * rowSize), [end - start, batch.seqLen, C]),
  }));
}

/** One shard's work. `init` is the shard's initial state (B_s, T, C), null for zeros. */
export interface GradientJob {
  batch: Batch;
  depth: DepthDraw;
  supervisedDepths: number;
  init: Float32Array | null;
  places: Int32Array | undefined; // (B_s·T) the shard's Abacus places
}

/** The gradient of a job's shard, left in `model`'s parameters (this thread's or a worker's). */
export function jobGradient(model: RavenModel, job: GradientJob): StepGradient {
  const { batch, depth, supervisedDepths, init, places } = job;
  const shape = [batch.batch, batch.seqLen, model.config.nEmbd];
  return batchGradient(model, batch, {
    depth,
    supervisedDepths,
    init: init === null ? { mode: "zero" } : { mode: "given", state: tensor(init, shape) },
    places,
  });
}

/** Values in all of the model's parameters together (the length of a flat copy). */
export function parameterCount(model: RavenModel): number {
  return namedParameters(model.params).reduce((n, [, t]) => n + t.size, 0);
}

/** Copies the parameters' values into `flat`, in `namedParameters` order. */
export function packParameters(model: RavenModel, flat: Float32Array): void {
  let at = 0;
  for (const [, t] of namedParameters(model.params)) {
    flat.set(t.data, at);
    at += t.size;
  }
}

/** Sets the parameters' values from `flat` (the layout of `packParameters`). */
export function unpackParameters(model: RavenModel, flat: Float32Array): void {
  let at = 0;
  for (const [, t] of namedParameters(model.params)) {
    t.data.set(flat.subarray(at, at + t.size));
    at += t.size;
  }
}

/** Copies the parameters' gradients into `flat` (zeros where a parameter has none). */
export function packGradients(model: RavenModel, flat: Float32Array): void {
  let at = 0;
  for (const [, t] of namedParameters(model.params)) {
    if (t.grad === null) flat.fill(0, at, at + t.size);
    else flat.set(t.grad, at);
    at += t.size;
  }
}

/**
 * The parameters' gradients become Σ_s w_s g_s: `ownWeight` times their own gradient plus each
 * `others[s]` (flat, the layout of `packGradients`) times `weights[s]`.
 */
export function combineGradients(
  model: RavenModel,
  ownWeight: number,
  others: readonly Float32Array[],
  weights: readonly number[],
): void {
  let at = 0;
  for (const [, t] of namedParameters(model.params)) {
    const g = t.grad ?? new Float32Array(t.size);
    for (let i = 0; i < g.length; i++) g[i] *= ownWeight;
    others.forEach((flat, s) => {
      const w = weights[s];
      for (let i = 0; i < g.length; i++) g[i] += w * flat[at + i];
    });
    t.grad = g;
    at += t.size;
  }
}
