/**
 * Evaluation on several threads. The batches of an evaluation (src/train/evaluate.ts) are
 * independent and each row draws its own initial states, so workers (./model-workers.ts) decode
 * them in any order, the costliest first, each taking the next when done, and the rows are
 * exactly those of `evaluate` on this thread. `loom eval` starts workers of its own
 * (`evaluateOnThreads`); a data-parallel training run evaluates on its gradient workers and this
 * thread (`evaluateOnPool`).
 */
import type { Example } from "../data/example.ts";
import type { CharTokenizer } from "../data/tokenizer.ts";
import type { RavenModel } from "../model/model.ts";
import {
  type DecodeJob,
  type DecodeOptions,
  type DecodedRow,
  type EvalOptions,
  type EvalRow,
  collectResults,
  decodeJob,
  evaluate,
  planDecodeJobs,
} from "../train/evaluate.ts";
import { ModelWorkers, type WorkerHandle } from "./model-workers.ts";

/** `evaluate` on `threads` worker threads (on this thread when threads is 1). */
export async function evaluateOnThreads(
  model: RavenModel,
  tok: CharTokenizer,
  examples: readonly Example[],
  o: EvalOptions,
  threads: number,
): Promise<EvalRow[]> {
  const jobs = planDecodeJobs(tok, examples, o.steps, o.batchSize ?? 64);
  const n = Math.min(threads, jobs.length);
  if (n <= 1) return evaluate(model, tok, examples, o);
  const pool = await ModelWorkers.start(model, n);
  try {
    pool.shareWeights(model);
    const decoded = await decodeJobs(jobs, pool.workers, null, o);
    return collectResults(tok, examples, o, jobs, decoded);
  } finally {
    await pool.close();
  }
}

/**
 * `evaluate` on the workers of a running pool (their replicas get `model`'s weights first) and
 * on this thread: what a data-parallel training run's periodic evaluation uses.
 */
export async function evaluateOnPool(
  model: RavenModel,
  tok: CharTokenizer,
  examples: readonly Example[],
  o: EvalOptions,
  pool: ModelWorkers,
): Promise<EvalRow[]> {
  const jobs = planDecodeJobs(tok, examples, o.steps, o.batchSize ?? 64);
  pool.shareWeights(model);
  const decoded = await decodeJobs(jobs, pool.workers, model, o);
  return collectResults(tok, examples, o, jobs, decoded);
}

/**
 * Every job decoded once, by whichever of `workers` (and this thread, with `own`) is free next,
 * the costliest first. This thread decodes a job at a time and then yields, so that the
 * workers' replies are read and they take their next job.
 */
async function decodeJobs(
  jobs: readonly DecodeJob[],
  workers: readonly WorkerHandle[],
  own: RavenModel | null,
  o: EvalOptions,
): Promise<DecodedRow[][]> {
  const { exit, exitThreshold, seed, whole } = o;
  const options: DecodeOptions = { exit, exitThreshold, seed, whole };
  const order = jobs.map((_, j) => j).sort((a, b) => decodeCost(jobs[b]) - decodeCost(jobs[a]));
  const decoded = new Array<DecodedRow[]>(jobs.length);
  let next = 0;
  const onWorker = async (worker: WorkerHandle) => {
    for (let k = next++; k < order.length; k = next++) {
      decoded[order[k]] = await worker.decode(jobs[order[k]], options);
      o.onProgress?.(jobs[order[k]]);
    }
  };
  const onThisThread = async (model: RavenModel) => {
    for (let k = next++; k < order.length; k = next++) {
      decoded[order[k]] = decodeJob(model, jobs[order[k]], options);
      o.onProgress?.(jobs[order[k]]);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all([...workers.map(onWorker), ...(own === null ? [] : [onThisThread(own)])]);
  return decoded;
}

/** Work of a job, up to a constant: rows × recurrences × the longest sequence it decodes. */
function decodeCost(job: DecodeJob): number {
  const longest = job.prompts[0].length + Math.max(...job.answers.map((a) => a.length));
  return job.rows.length * job.r * longest;
}
