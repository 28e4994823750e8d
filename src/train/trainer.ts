/**
 * The training loop over an explicit state: no console, no files, no clock of its own. One
 * optimizer step = draw the depth (n no-grad + k grad iterations), build the batch, forward with
 * truncated backprop and the loss at the last `supervisedDepths` depths, backward, clip, update.
 *
 * Everything random in a step (depth, batch, initial state) is a pure function of (seed, step),
 * so `step` is the only thing a resumed run needs to draw exactly what the uninterrupted run
 * would have: resuming reproduces the loss curve bit for bit.
 */
import type { EncodedExample } from "../data/example.ts";
import { makeBatch, packText, type Batch } from "../data/batches.ts";
import { PAD_ID } from "../data/tokenizer.ts";
import { shuffleInPlace } from "../data/shuffle.ts";
import { namedParameters } from "../model/checkpoint.ts";
import { fastBlockFor } from "../model/fast-block.ts";
import { hasAbacus, randomAbacusPlaces, sequencePlaces } from "../model/abacus.ts";
import type { ForwardContext } from "../model/layers.ts";
import {
  type RavenModel,
  type StateInitOption,
  embedInputs,
  initializeState,
  iterateOneStep,
  predictFromLatents,
} from "../model/model.ts";
import { add, crossEntropy, scale } from "../tensor/ops.ts";
import { Rng, mixSeed } from "../tensor/random.ts";
import { type Tensor, backward, noGrad } from "../tensor/tensor.ts";
import type { DepthDraw } from "./depth-sampler.ts";
import {
  type OptimizerState,
  type Param,
  clipGradNorm,
  makeOptimizer,
  type Optimizer,
} from "./optim.ts";
import { type Recipe, drawDepth, warmupSteps } from "./recipe.ts";
import { learningRate } from "./schedule.ts";

/** What the model trains on: encoded prompt/answer examples, or one token stream (LM). */
export type TrainData =
  | {
      kind: "examples";
      encoded: readonly EncodedExample[];
      /** Each example's difficulty (the task knob), for the recipe's curriculum; optional. */
      difficulty?: readonly (number | undefined)[];
    }
  | { kind: "text"; tokens: Int32Array; seqLen: number };

/** Everything that changes during a run (weights live in `model`). */
export interface TrainState {
  model: RavenModel;
  opt: OptimizerState;
  /** Optimizer steps taken so far. */
  step: number;
  /** Length of the run the LR schedule is laid out for. */
  totalSteps: number;
  seed: number;
  /** Target tokens (labelled positions) seen so far. */
  tokens: number;
}

export interface StepMetrics {
  step: number; // 1-based: the step just taken
  loss: number; // cross-entropy at the final depth
  objective: number; // what was minimised: mean over the supervised depths
  lr: number;
  gradNorm: number;
  noGradSteps: number;
  gradSteps: number;
  tokens: number; // labelled tokens in this batch
  inputTokens: number; // all positions of the batch (B·T), for throughput
  skipped: boolean; // non-finite gradient: no update
}

/** The parameters as optimizer `Param`s (grad read live from the tensor). */
export function trainableParams(model: RavenModel): Param[] {
  return namedParameters(model.params).map(([name, t]) => ({
    name,
    data: t.data,
    shape: t.shape,
    get grad() {
      return t.grad;
    },
  }));
}

/** A fresh state: zero optimizer moments at step 0. */
export function createTrainState(
  model: RavenModel,
  recipe: Recipe,
  seed: number,
  totalSteps: number,
): TrainState {
  const opt = optimizerOf(recipe).init(trainableParams(model));
  return { model, opt, step: 0, totalSteps, seed, tokens: 0 };
}

export function optimizerOf(recipe: Recipe): Optimizer {
  return makeOptimizer(recipe.optimizer, {
    beta1: recipe.beta1,
    beta2: recipe.beta2,
    eps: recipe.optimizer === "adam-atan2" && recipe.eps < 1e-7 ? 1e-6 : recipe.eps,
    weightDecay: recipe.weightDecay,
    lrPeak: recipe.lr,
  });
}

/** The learning rate of 0-based step `step` in a run of `totalSteps`. */
export function lrAt(recipe: Recipe, step: number, totalSteps: number): number {
  const total = Math.max(totalSteps, 1);
  const warm = warmupSteps(recipe, total);
  const cooldown =
    recipe.schedule === "warmup-constant-cooldown"
      ? Math.min(Math.floor(total * recipe.cooldownFraction), total - warm)
      : 0;
  return learningRate(recipe.schedule, step, {
    maxLr: recipe.lr,
    minLr: recipe.lr * recipe.minLrRatio,
    warmupSteps: warm,
    totalSteps: total,
    cooldownSteps: cooldown,
  });
}

/**
 * The depth of 0-based step `step`: the recipe's scheme, or the model config's. `level` is the
 * step's difficulty under the "difficulty" scheme (`levelAt`).
 */
export function depthAt(
  model: RavenModel,
  recipe: Recipe,
  seed: number,
  step: number,
  level?: number,
): DepthDraw {
  const c = model.config;
  const scheme = recipe.depthScheme === "config" ? c.samplingScheme : recipe.depthScheme;
  const perLevel =
    level === undefined
      ? undefined
      : { difficulty: level, perDifficulty: recipe.depthPerDifficulty };
  return drawDepth(scheme, c.meanRecurrence, c.meanBackpropDepth, seed, step, perLevel);
}

const BATCH_SALT = 0x6a09e667;
const STATE_SALT = 0x3c6ef372;
const LEVEL_SALT = 0x510e527f;
const PLACE_SALT = 0x1f83d9ab;

const permCache = new Map<string, number[]>();

/** Example indices of step `step`: epochs of a seeded permutation, a pure function of step. */
export function batchIndices(n: number, batchSize: number, seed: number, step: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < batchSize; i++) {
    const q = step * batchSize + i;
    const epoch = Math.floor(q / n);
    const key = `${n}/${seed}/${epoch}`;
    let perm = permCache.get(key);
    if (perm === undefined) {
      if (permCache.size > 4) permCache.clear();
      perm = shuffleInPlace(
        Array.from({ length: n }, (_, j) => j),
        new Rng(mixSeed(seed, BATCH_SALT, epoch)),
      );
      permCache.set(key, perm);
    }
    out.push(perm[q % n]);
  }
  return out;
}

/**
 * The difficulty ceiling of 0-based step `step` under a curriculum over the first
 * `fraction` of a `totalSteps` run: the m distinct difficulties are unlocked one by one in m
 * equal stages (stage 1: the easiest only), all of them from step fraction·totalSteps on.
 * Returns Infinity when the curriculum is off (fraction 0) or no difficulty is known.
 */
export function curriculumCeiling(
  difficulties: readonly number[],
  fraction: number,
  step: number,
  totalSteps: number,
): number {
  const levels = [...new Set(difficulties)].sort((a, b) => a - b);
  if (!(fraction > 0) || levels.length === 0) return Infinity;
  const span = fraction * Math.max(totalSteps, 1);
  const stage = Math.min(levels.length, 1 + Math.floor((levels.length * step) / span));
  return stage >= levels.length ? Infinity : levels[stage - 1];
}

const poolCache = new WeakMap<object, Map<string, number[]>>();
const levelCache = new WeakMap<object, number[]>();

/** The distinct known difficulties of `data`, ascending (cached per data). */
function levelsOf(data: TrainData & { kind: "examples" }): number[] {
  let levels = levelCache.get(data);
  if (levels === undefined) {
    const known = (data.difficulty ?? []).filter((d): d is number => d !== undefined);
    levels = [...new Set(known)].sort((a, b) => a - b);
    levelCache.set(data, levels);
  }
  return levels;
}

/** Indices of the examples whose difficulty passes `keep` (unknown ones always), cached per data. */
function poolOf(
  data: TrainData & { kind: "examples" },
  key: string,
  keep: (difficulty: number) => boolean,
): number[] | null {
  const diffs = data.difficulty;
  if (diffs === undefined) return null;
  let byKey = poolCache.get(data);
  if (byKey === undefined) {
    byKey = new Map();
    poolCache.set(data, byKey);
  }
  let pool = byKey.get(key);
  if (pool === undefined) {
    pool = [];
    for (let i = 0; i < data.encoded.length; i++) {
      const d = diffs[i];
      if (d === undefined || keep(d)) pool.push(i);
    }
    byKey.set(key, pool);
  }
  return pool.length > 0 ? pool : null;
}

/** The curriculum's difficulty ceiling at `step` (Infinity when off or nothing is known). */
function ceilingAt(data: TrainData, recipe: Recipe, step: number, totalSteps: number): number {
  if (data.kind !== "examples" || recipe.curriculum <= 0 || data.difficulty === undefined) {
    return Infinity;
  }
  return curriculumCeiling(levelsOf(data), recipe.curriculum, step, totalSteps);
}

/**
 * The difficulty level of step `step` under the "difficulty" depth scheme: one of the levels the
 * curriculum has unlocked, uniformly (so hard levels are not starved by their share of the data).
 * Undefined for other schemes and for data without difficulties.
 */
export function levelAt(
  data: TrainData,
  recipe: Recipe,
  seed: number,
  step: number,
  totalSteps = 1,
): number | undefined {
  if (recipe.depthScheme !== "difficulty" || data.kind !== "examples") return undefined;
  const ceiling = ceilingAt(data, recipe, step, totalSteps);
  const levels = levelsOf(data).filter((d) => d <= ceiling);
  if (levels.length === 0) return undefined;
  return levels[new Rng(mixSeed(seed, LEVEL_SALT, step)).int(levels.length)];
}

/**
 * The batch of 0-based step `step` of a `totalSteps` run. With `level`, drawn from the examples
 * of that difficulty only; else, with `recipe.curriculum` > 0 and known difficulties, from the
 * examples the curriculum has unlocked by then.
 */
export function batchAt(
  data: TrainData,
  recipe: Recipe,
  seed: number,
  step: number,
  totalSteps = 1,
  level?: number,
): Batch {
  if (data.kind === "text") {
    return packText(
      data.tokens,
      data.seqLen,
      recipe.batchSize,
      new Rng(mixSeed(seed, BATCH_SALT, step)),
    );
  }
  const n = data.encoded.length;
  if (n === 0) throw new RangeError("training data holds no examples");
  const ceiling = ceilingAt(data, recipe, step, totalSteps);
  const pool =
    level !== undefined
      ? poolOf(data, `=${level}`, (d) => d === level)
      : ceiling === Infinity
        ? null
        : poolOf(data, `<=${ceiling}`, (d) => d <= ceiling);
  if (pool === null) {
    return makeBatch(
      data.encoded,
      batchIndices(n, Math.min(recipe.batchSize, n), seed, step),
      PAD_ID,
    );
  }
  const picks = batchIndices(pool.length, Math.min(recipe.batchSize, pool.length), seed, step);
  return makeBatch(
    data.encoded,
    picks.map((i) => pool[i]),
    PAD_ID,
  );
}

/**
 * What 0-based step `step` of a `totalSteps` run trains on: its depth and its batch (under the
 * "difficulty" scheme, both of the level `levelAt` draws).
 */
export function planStep(
  model: RavenModel,
  recipe: Recipe,
  data: TrainData,
  seed: number,
  step: number,
  totalSteps: number,
): { depth: DepthDraw; batch: Batch } {
  const level = levelAt(data, recipe, seed, step, totalSteps);
  return {
    depth: depthAt(model, recipe, seed, step, level),
    batch: batchAt(data, recipe, seed, step, totalSteps, level),
  };
}

export interface LossOptions {
  depth: DepthDraw;
  /** Loss after each of the last `supervisedDepths` gradient iterations, averaged. */
  supervisedDepths: number;
  init: StateInitOption;
  /** (B·T) Abacus places (training offsets); default: offset 0. */
  places?: Int32Array | undefined;
}

/**
 * The objective on one batch with truncated backprop: `depth.noGradSteps` iterations off the
 * tape, then `depth.gradSteps` on it; cross-entropy read out after each of the last
 * `supervisedDepths` of them (at least the final state). Returns the graph's loss and the
 * final-depth loss value.
 */
export function batchLoss(
  model: RavenModel,
  batch: Batch,
  o: LossOptions,
): { objective: Tensor; finalLoss: number } {
  const ctx: ForwardContext = {
    batch: batch.batch,
    seqLen: batch.seqLen,
    positions: Int32Array.from({ length: batch.seqLen }, (_, i) => i),
    places: o.places ?? sequencePlaces(model.config, batch.inputIds, batch.batch, batch.seqLen),
    fastBlock: fastBlockFor(model), // the no-grad iterations: same values, no tape, no churn
  };
  const e = embedInputs(model, batch.inputIds, ctx);
  let s = initializeState(model, e, o.init);
  const { noGradSteps: n, gradSteps: k } = o.depth;
  noGrad(() => {
    for (let t = 0; t < n; t++) s = iterateOneStep(model, s, e, t, ctx);
  });
  const supervised = Math.max(1, Math.min(o.supervisedDepths, k));
  const losses: Tensor[] = [];
  for (let t = n; t < n + k; t++) {
    s = iterateOneStep(model, s, e, t, ctx);
    if (t >= n + k - supervised) {
      losses.push(crossEntropy(predictFromLatents(model, s, ctx).logits, batch.labels));
    }
  }
  if (losses.length === 0) {
    losses.push(crossEntropy(predictFromLatents(model, s, ctx).logits, batch.labels));
  }
  const finalLoss = losses[losses.length - 1].data[0];
  let total = losses[0];
  for (const l of losses.slice(1)) total = add(total, l);
  const objective = losses.length === 1 ? total : scale(total, 1 / losses.length);
  return { objective, finalLoss };
}

/** The initial-state option of step `step` (the config's state_init, seeded per step). */
export function stateInitAt(model: RavenModel, seed: number, step: number): StateInitOption {
  const mode = model.config.stateInit;
  return mode === "zero" ? { mode } : { mode, rng: new Rng(mixSeed(seed, STATE_SALT, step)) };
}

/** What one optimizer step trains on, drawn by the thread that owns the state. */
export interface StepPlan {
  depth: DepthDraw;
  batch: Batch;
  lr: number;
  /** Labelled positions of the batch: the loss is their mean. */
  tokens: number;
  /** (B·T) the batch's Abacus places, each row at a random offset; undefined without. */
  places: Int32Array | undefined;
}

/** A step's objective and final-depth loss; its gradient is in the parameters' `grad`. */
export interface StepGradient {
  objective: number;
  finalLoss: number;
}

/**
 * Computes the gradient of a planned step into `state.model`'s parameters: `localGradient` on
 * this thread, or data parallel over worker threads (src/node/data-parallel.ts).
 */
export type GradientFn = (
  state: TrainState,
  recipe: Recipe,
  plan: StepPlan,
) => StepGradient | Promise<StepGradient>;

/** The depth, batch and learning rate of the state's next step. */
export function planTrainStep(state: TrainState, recipe: Recipe, data: TrainData): StepPlan {
  const { model, seed, step } = state;
  const { depth, batch } = planStep(model, recipe, data, seed, step, state.totalSteps);
  return {
    depth,
    batch,
    lr: lrAt(recipe, step, state.totalSteps),
    tokens: labelledTokens(batch),
    places: placesAt(model, seed, step, batch),
  };
}

/** The Abacus places of step `step`'s batch: each row at an offset drawn for that step. */
function placesAt(
  model: RavenModel,
  seed: number,
  step: number,
  batch: Batch,
): Int32Array | undefined {
  if (!hasAbacus(model.config)) return undefined;
  const rng = new Rng(mixSeed(seed, PLACE_SALT, step));
  return randomAbacusPlaces(model.config, batch.inputIds, batch.batch, batch.seqLen, rng);
}

/** The positions of `batch` that carry a label: the loss is their mean. */
export function labelledTokens(batch: Batch): number {
  return batch.labels.reduce((a, l) => a + (l >= 0 ? 1 : 0), 0);
}

/**
 * The gradient of `batch`'s objective, left in the model's parameters' `grad` (cleared first);
 * this step's activations go back to the pool for the next one.
 */
export function batchGradient(model: RavenModel, batch: Batch, o: LossOptions): StepGradient {
  for (const [, t] of namedParameters(model.params)) t.grad = null;
  const { objective, finalLoss } = batchLoss(model, batch, o);
  const objectiveValue = objective.data[0];
  backward(objective, { release: true });
  return { objective: objectiveValue, finalLoss };
}

/** The planned step's gradient, computed on this thread. */
export function localGradient(state: TrainState, recipe: Recipe, plan: StepPlan): StepGradient {
  return batchGradient(state.model, plan.batch, {
    depth: plan.depth,
    supervisedDepths: recipe.supervisedDepths,
    init: stateInitAt(state.model, state.seed, state.step),
    places: plan.places,
  });
}

/** Clips the gradient in the parameters, updates them and advances `state`. */
export function applyGradient(
  state: TrainState,
  recipe: Recipe,
  plan: StepPlan,
  g: StepGradient,
): StepMetrics {
  const params = trainableParams(state.model);
  const gradNorm = clipGradNorm(params, recipe.gradClip > 0 ? recipe.gradClip : Infinity);
  const skipped = !Number.isFinite(gradNorm) || !Number.isFinite(g.objective);
  if (!skipped) optimizerOf(recipe).step(params, state.opt, plan.lr);
  else state.opt.step += 1; // keep the optimizer's step count aligned with the run's
  for (const [, t] of namedParameters(state.model.params)) t.grad = null;
  state.step += 1;
  state.tokens += plan.tokens;
  return {
    step: state.step,
    loss: g.finalLoss,
    objective: g.objective,
    lr: plan.lr,
    gradNorm,
    noGradSteps: plan.depth.noGradSteps,
    gradSteps: plan.depth.gradSteps,
    tokens: plan.tokens,
    inputTokens: plan.batch.batch * plan.batch.seqLen,
    skipped,
  };
}

/** One optimizer step on `data` on this thread; advances `state` and returns what happened. */
export function trainStep(state: TrainState, recipe: Recipe, data: TrainData): StepMetrics {
  const plan = planTrainStep(state, recipe, data);
  return applyGradient(state, recipe, plan, localGradient(state, recipe, plan));
}

export interface LoopHooks {
  /** Checked before every step; true ends the loop (time budget, Ctrl-C, max steps). */
  shouldStop(state: TrainState): boolean;
  /** How each step's gradient is computed (default: `localGradient`, on this thread). */
  gradient?: GradientFn;
  onStep?(m: StepMetrics, state: TrainState): void | Promise<void>;
}

/**
 * Steps until `state.step` reaches `state.totalSteps` or `shouldStop` says so. Yields to the event
 * loop between steps (so signal handlers and timers run). Returns the number of steps taken.
 */
export async function trainLoop(
  state: TrainState,
  recipe: Recipe,
  data: TrainData,
  hooks: LoopHooks,
): Promise<number> {
  let taken = 0;
  const gradient = hooks.gradient ?? localGradient;
  while (state.step < state.totalSteps && !hooks.shouldStop(state)) {
    const plan = planTrainStep(state, recipe, data);
    const m = applyGradient(state, recipe, plan, await gradient(state, recipe, plan));
    taken++;
    await hooks.onStep?.(m, state);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return taken;
}
