/**
 * Evaluation on several threads. The batches of an evaluation (src/train/evaluate.ts) are
 * independent and each row draws its own initial states, so N workers (./model-workers.ts)
 * decode them in any order, the costliest first, each taking the next when done, and the rows
 * are exactly those of `evaluate` on this thread.
 */
import type { Example } from "../data/example.ts";
import type { CharTokenizer } from "../data/tokenizer.ts";
import type { RavenModel } from "../model/model.ts";
import {
  type DecodeJob,
  type DecodedRow,
  type EvalOptions,
  type EvalRow,
  collectResults,
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
  const options = { exit: o.exit, exitThreshold: o.exitThreshold, seed: o.seed };
  const order = jobs.map((_, j) => j).sort((a, b) => decodeCost(jobs[b]) - decodeCost(jobs[a]));
  const decoded = new Array<DecodedRow[]>(jobs.length);
  const pool = await ModelWorkers.start(model, n);
  try {
    pool.shareWeights(model);
    let next = 0;
    const drain = async (worker: WorkerHandle) => {
      for (let k = next++; k < order.length; k = next++) {
        const job = jobs[order[k]];
        decoded[order[k]] = await worker.decode(job, options);
        o.onProgress?.(job);
      }
    };
    await Promise.all(pool.workers.map(drain));
  } finally {
    await pool.close();
  }
  return collectResults(tok, examples, o.steps, jobs, decoded);
}

/** Work of a job, up to a constant: rows × recurrences × the longest sequence it decodes. */
function decodeCost(job: DecodeJob): number {
  const longest = job.prompts[0].length + Math.max(...job.answers.map((a) => a.length));
  return job.rows.length * job.r * longest;
}
