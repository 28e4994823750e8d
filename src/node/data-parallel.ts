/**
 * Data-parallel training on Node worker threads. A model of width 64-128 is too narrow for one
 * step's kernels to use more than one core, so `loom train --workers N` runs N threads instead,
 * each on a slice of the batch: this thread and N - 1 workers (./model-workers.ts), each with a
 * replica of the model. Per step this thread shares the weights, posts each worker its shard,
 * computes shard 0 itself, and averages the gradients (the arithmetic: src/train/data-parallel.ts);
 * the optimizer then updates the weights here only.
 */
import { namedParameters } from "../model/checkpoint.ts";
import type { RavenModel } from "../model/model.ts";
import {
  type GradientJob,
  combineGradients,
  jobGradient,
  shardRows,
  shardStateInits,
  sliceBatch,
} from "../train/data-parallel.ts";
import type { Recipe } from "../train/recipe.ts";
import {
  type GradientFn,
  type StepGradient,
  type StepPlan,
  type TrainState,
  labelledTokens,
} from "../train/trainer.ts";
import type { Evaluator } from "../train/evaluate.ts";
import { ModelWorkers, usableCores } from "./model-workers.ts";
import { evaluateOnPool } from "./parallel-eval.ts";

/** Examples per thread below which another thread costs more than it computes. */
export const MIN_ROWS_PER_WORKER = 8;

/**
 * The threads an automatic run (`workers` 0) uses: one per core loom may use, at most one per
 * MIN_ROWS_PER_WORKER examples of a batch.
 */
export function autoWorkers(batchSize: number): number {
  return Math.max(1, Math.min(usableCores(), Math.floor(batchSize / MIN_ROWS_PER_WORKER)));
}

/** Gradients over N threads, and evaluations on the same threads; `close` ends the workers. */
export interface GradientWorkers {
  readonly threads: number;
  readonly gradient: GradientFn;
  readonly evaluate: Evaluator;
  close(): Promise<void>;
}

/** Starts `threads - 1` workers for `model` (resolves once each has built its replica). */
export async function startGradientWorkers(
  model: RavenModel,
  threads: number,
): Promise<GradientWorkers> {
  const pool = await ModelWorkers.start(model, threads - 1);
  const { workers } = pool;
  const gradient: GradientFn = async (state, recipe, plan) => {
    const { jobs, weights } = shardJobs(state, recipe, plan, threads);
    pool.shareWeights(state.model); // the workers read this step's weights
    const pending = jobs.slice(1).map((job, i) => {
      return weights[i + 1] > 0 ? workers[i].gradient(job) : Promise.resolve(null);
    });
    const own = weights[0] > 0 ? jobGradient(state.model, jobs[0]) : zeroGradient(state.model);
    const others = await Promise.all(pending);
    const used = others.flatMap((g, i) => (g === null ? [] : [{ g, i }]));
    combineGradients(
      state.model,
      weights[0],
      used.map(({ i }) => workers[i].gradView),
      used.map(({ i }) => weights[i + 1]),
    );
    return {
      objective: weights[0] * own.objective + sum(used, ({ g, i }) => weights[i + 1] * g.objective),
      finalLoss: weights[0] * own.finalLoss + sum(used, ({ g, i }) => weights[i + 1] * g.finalLoss),
    };
  };
  const evaluate: Evaluator = (model, tok, examples, o) =>
    evaluateOnPool(model, tok, examples, o, pool);
  return { threads, gradient, evaluate, close: () => pool.close() };
}

/** The planned step cut into one job per thread, each weighted by its share of the tokens. */
function shardJobs(
  state: TrainState,
  recipe: Recipe,
  plan: StepPlan,
  threads: number,
): { jobs: GradientJob[]; weights: number[] } {
  const shards = shardRows(plan.batch.batch, threads);
  const T = plan.batch.seqLen;
  const inits = shardStateInits(state.model, state.seed, state.step, plan.batch, shards);
  const jobs = shards.map((shard, s): GradientJob => {
    const init = inits[s];
    return {
      batch: sliceBatch(plan.batch, shard),
      depth: plan.depth,
      supervisedDepths: recipe.supervisedDepths,
      init: init.mode === "given" ? init.state.data : null,
      places: plan.places?.slice(shard.start * T, shard.end * T),
    };
  });
  const weights = jobs.map((j) => (plan.tokens > 0 ? labelledTokens(j.batch) / plan.tokens : 0));
  return { jobs, weights };
}

function zeroGradient(model: RavenModel): StepGradient {
  for (const [, t] of namedParameters(model.params)) t.grad = null;
  return { objective: 0, finalLoss: 0 };
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  return xs.reduce((a, x) => a + f(x), 0);
}
