/**
 * Replicas of a model on Node worker threads (src/node/model-worker.ts), for the work a model of
 * width 64-128 cannot spread over cores by itself (its kernels are too small): data-parallel
 * training (./data-parallel.ts) and evaluation (./parallel-eval.ts). The weights travel through
 * shared memory: `shareWeights` writes this thread's and each worker reads them before a job.
 * While the workers live, native kernels run on their caller's thread: each JS thread gets a core
 * of its own, and `close` gives the native pool back its threads.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { backend } from "../backend/select.ts";
import type { ModelConfig } from "../model/config.ts";
import type { RavenModel } from "../model/model.ts";
import { type GradientJob, packParameters, parameterCount } from "../train/data-parallel.ts";
import type { DecodeJob, DecodeOptions, DecodedRow } from "../train/evaluate.ts";
import type { StepGradient } from "../train/trainer.ts";
import { limitNativeThreads } from "./native.ts";

/** The cores loom may use: LOOM_THREADS, else the cores this process may run on. */
export function usableCores(): number {
  const allowed = Number(process.env.LOOM_THREADS);
  return Number.isInteger(allowed) && allowed > 0 ? allowed : availableParallelism();
}

/** What a worker is started with (its `workerData`). */
export interface WorkerSetup {
  config: ModelConfig;
  backend: string;
  /** The weights, written by the main thread before jobs (float32, `packParameters`). */
  params: SharedArrayBuffer;
  /** This worker's gradient, written by it before it answers a gradient job (`packGradients`). */
  grads: SharedArrayBuffer;
}

/** A worker's job: a shard's gradient, or a batch to decode. */
export type ModelJob =
  | { kind: "gradient"; job: GradientJob }
  | { kind: "decode"; job: DecodeJob; options: DecodeOptions };

/** A worker's messages: its replica is built; a job's result; why a job failed. */
export type WorkerReply =
  | { kind: "ready" }
  | ({ kind: "gradient" } & StepGradient)
  | { kind: "decode"; rows: DecodedRow[] }
  | { kind: "failed"; error: string };

/** `count` workers, each with a replica of one model. */
export class ModelWorkers {
  readonly workers: readonly WorkerHandle[];
  private readonly paramView: Float32Array;
  private readonly nativeThreads: number; // the native pool's threads before the workers

  private constructor(workers: WorkerHandle[], params: SharedArrayBuffer, nativeThreads: number) {
    this.workers = workers;
    this.paramView = new Float32Array(params);
    this.nativeThreads = nativeThreads;
  }

  /** Starts the workers (resolves once each has built its replica). */
  static async start(model: RavenModel, count: number): Promise<ModelWorkers> {
    const size = parameterCount(model) * Float32Array.BYTES_PER_ELEMENT;
    const params = new SharedArrayBuffer(size);
    const nativeThreads = backend().threads;
    limitNativeThreads(1);
    const workers = await Promise.all(
      Array.from({ length: count }, () =>
        WorkerHandle.start({
          config: model.config,
          backend: backend().name,
          params,
          grads: new SharedArrayBuffer(size),
        }),
      ),
    );
    return new ModelWorkers(workers, params, nativeThreads);
  }

  /** Writes `model`'s weights where the workers read them. */
  shareWeights(model: RavenModel): void {
    packParameters(model, this.paramView);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    limitNativeThreads(this.nativeThreads);
  }
}

/** One worker thread and its single outstanding job. */
export class WorkerHandle {
  readonly gradView: Float32Array;
  private readonly worker: Worker;
  private waiting: {
    resolve: (reply: WorkerReply) => void;
    reject: (e: Error) => void;
  } | null = null;

  private constructor(worker: Worker, grads: SharedArrayBuffer) {
    this.worker = worker;
    this.gradView = new Float32Array(grads);
    worker.on("message", (m: WorkerReply) => {
      const w = this.take();
      if (m.kind === "failed") w?.reject(new Error(`model worker: ${m.error}`));
      else w?.resolve(m);
    });
    worker.on("error", (e) => this.take()?.reject(e));
    worker.on("exit", (code) => {
      this.take()?.reject(new Error(`model worker exited (code ${code}) during a job`));
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

  /** The shard's gradient, left in `gradView`; resolves with its losses. */
  async gradient(job: GradientJob): Promise<StepGradient> {
    const reply = await this.run({ kind: "gradient", job });
    if (reply.kind !== "gradient") throw new Error(`model worker: a ${reply.kind} reply`);
    return { objective: reply.objective, finalLoss: reply.finalLoss };
  }

  async decode(job: DecodeJob, options: DecodeOptions): Promise<DecodedRow[]> {
    const reply = await this.run({ kind: "decode", job, options });
    if (reply.kind !== "decode") throw new Error(`model worker: a ${reply.kind} reply`);
    return reply.rows;
  }

  async terminate(): Promise<void> {
    this.waiting = null;
    await this.worker.terminate();
  }

  private run(job: ModelJob): Promise<WorkerReply> {
    return new Promise<WorkerReply>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(job);
    });
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
    return new Worker(new URL("./model-worker.js", here), { workerData: setup });
  }
  const entry = new URL("./model-worker.ts", here).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: setup });
}
