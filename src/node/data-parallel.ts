/**
 * Data-parallel training on Node worker threads. A model of width 64-128 is too narrow for one
 * step's kernels to use more than one core, so `loom train --workers N` runs N threads instead,
 * each on a slice of the batch: this thread and N - 1 workers (src/node/train-worker.ts), each
 * with a replica of the model. Per step this thread writes the weights into shared memory, posts
 * each worker its shard, computes shard 0 itself, and averages the gradients (the arithmetic:
 * src/train/data-parallel.ts); the optimizer then updates the weights here only. Native kernels
 * run single-threaded meanwhile: each thread has a core of its own.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { backend } from "../backend/select.ts";
import type { Batch } from "../data/batches.ts";
import type { ModelConfig } from "../model/config.ts";
import { namedParameters } from "../model/checkpoint.ts";
import type { RavenModel } from "../model/model.ts";
import {
  combineGradients,
  packParameters,
  parameterCount,
  shardRows,
  shardStateInits,
  sliceBatch,
} from "../train/data-parallel.ts";
import type { DepthDraw } from "../train/depth-sampler.ts";
import type { Recipe } from "../train/recipe.ts";
import {
  type GradientFn,
  type StepGradient,
  type StepPlan,
  type TrainState,
  batchGradient,
  labelledTokens,
} from "../train/trainer.ts";
import { tensor } from "../tensor/tensor.ts";
import { limitNativeThreads } from "./native.ts";

/** Examples per thread below which another thread costs more than it computes. */
export const MIN_ROWS_PER_WORKER = 8;

/**
 * The threads an automatic run (`workers` 0) uses: one per core loom may use (LOOM_THREADS, else
 * the cores this process may run on), at most one per MIN_ROWS_PER_WORKER examples of a batch.
 */
export function autoWorkers(batchSize: number): number {
  const allowed = Number(process.env.LOOM_THREADS);
  const cores = Number.isInteger(allowed) && allowed > 0 ? allowed : availableParallelism();
  return Math.max(1, Math.min(cores, Math.floor(batchSize / MIN_ROWS_PER_WORKER)));
}

/** What a worker is started with (its `workerData`). */
export interface WorkerSetup {
  config: ModelConfig;
  backend: string;
  /** The weights, written by the main thread before each job (float32, `packParameters`). */
  params: SharedArrayBuffer;
  /** This worker's gradient, written by it before it answers (float32, `packGradients`). */
  grads: SharedArrayBuffer;
}

/** One shard's work. `init` is the shard's initial state, null for zeros. */
export interface WorkerJob {
  batch: Batch;
  depth: DepthDraw;
  supervisedDepths: number;
  init: Float32Array | null;
}

/** A worker's messages: its replica is built; a job's result; why a job failed. */
export type WorkerReply =
  { kind: "ready" } | ({ kind: "done" } & StepGradient) | { kind: "failed"; error: string };

/** Gradients over N threads; `close` ends the workers. */
export interface GradientWorkers {
  readonly threads: number;
  readonly gradient: GradientFn;
  close(): Promise<void>;
}

/** Starts `threads - 1` workers for `model` (resolves once each has built its replica). */
export async function startGradientWorkers(
  model: RavenModel,
  threads: number,
): Promise<GradientWorkers> {
  const size = parameterCount(model) * Float32Array.BYTES_PER_ELEMENT;
  const params = new SharedArrayBuffer(size);
  const paramView = new Float32Array(params);
  const workers = await Promise.all(
    Array.from({ length: threads - 1 }, () =>
      WorkerHandle.start({
        config: model.config,
        backend: backend().name,
        params,
        grads: new SharedArrayBuffer(size),
      }),
    ),
  );
  const nativeThreads = backend().threads;
  limitNativeThreads(1);
  const gradient: GradientFn = async (state, recipe, plan) => {
    const { jobs, weights } = shardJobs(state, recipe, plan, threads);
    packParameters(state.model, paramView); // the workers read this step's weights
    const pending = jobs.slice(1).map((job, i) => {
      return weights[i + 1] > 0 ? workers[i].run(job) : Promise.resolve(null);
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
  return {
    threads,
    gradient,
    close: async () => {
      await Promise.all(workers.map((w) => w.terminate()));
      limitNativeThreads(nativeThreads);
    },
  };
}

/** The planned step cut into one job per thread, each weighted by its share of the tokens. */
function shardJobs(
  state: TrainState,
  recipe: Recipe,
  plan: StepPlan,
  threads: number,
): { jobs: WorkerJob[]; weights: number[] } {
  const shards = shardRows(plan.batch.batch, threads);
  const inits = shardStateInits(state.model, state.seed, state.step, plan.batch, shards);
  const jobs = shards.map((shard, s): WorkerJob => {
    const init = inits[s];
    return {
      batch: sliceBatch(plan.batch, shard),
      depth: plan.depth,
      supervisedDepths: recipe.supervisedDepths,
      init: init.mode === "given" ? init.state.data : null,
    };
  });
  const weights = jobs.map((j) => (plan.tokens > 0 ? labelledTokens(j.batch) / plan.tokens : 0));
  return { jobs, weights };
}

/** The gradient of a job's shard, left in `model`'s parameters (this thread's or a worker's). */
export function jobGradient(model: RavenModel, job: WorkerJob): StepGradient {
  const { batch, depth, supervisedDepths, init } = job;
  const shape = [batch.batch, batch.seqLen, model.config.nEmbd];
  return batchGradient(model, batch, {
    depth,
    supervisedDepths,
    init: init === null ? { mode: "zero" } : { mode: "given", state: tensor(init, shape) },
  });
}

function zeroGradient(model: RavenModel): StepGradient {
  for (const [, t] of namedParameters(model.params)) t.grad = null;
  return { objective: 0, finalLoss: 0 };
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  return xs.reduce((a, x) => a + f(x), 0);
}

/** One worker thread and its single outstanding job. */
class WorkerHandle {
  readonly gradView: Float32Array;
  private readonly worker: Worker;
  private waiting: {
    resolve: (g: StepGradient | null) => void;
    reject: (e: Error) => void;
  } | null = null;

  private constructor(worker: Worker, grads: SharedArrayBuffer) {
    this.worker = worker;
    this.gradView = new Float32Array(grads);
    worker.on("message", (m: WorkerReply) => {
      const w = this.take();
      switch (m.kind) {
        case "ready":
          w?.resolve(null);
          break;
        case "done":
          w?.resolve({ objective: m.objective, finalLoss: m.finalLoss });
          break;
        case "failed":
          w?.reject(new Error(`training worker: ${m.error}`));
          break;
      }
    });
    worker.on("error", (e) => this.take()?.reject(e));
    worker.on("exit", (code) => {
      this.take()?.reject(new Error(`training worker exited (code ${code}) during a step`));
    });
  }

  static async start(setup: WorkerSetup): Promise<WorkerHandle> {
    const worker = spawn(setup);
    worker.unref();
    const handle = new WorkerHandle(worker, setup.grads);
    await new Promise((resolve, reject) => {
      handle.waiting = { resolve, reject };
    });
    return handle;
  }

  async run(job: WorkerJob): Promise<StepGradient> {
    const g = await new Promise<StepGradient | null>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(job);
    });
    if (g === null) throw new Error("training worker: answered a job with `ready`");
    return g;
  }

  async terminate(): Promise<void> {
    this.waiting = null;
    await this.worker.terminate();
  }

  private take() {
    const w = this.waiting;
    this.waiting = null;
    return w;
  }
}

/**
 * The worker thread, from the compiled .js next to this file or, when loom runs as TypeScript
 * (bin/loom.js, tests), through tsx's loader, which a worker does not inherit.
 */
function spawn(setup: WorkerSetup): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) {
    return new Worker(new URL("./train-worker.js", here), { workerData: setup });
  }
  const entry = new URL("./train-worker.ts", here).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: setup });
}
