/**
 * A model worker thread (started by src/node/model-workers.ts): a replica of the model that, per
 * job, reads the weights from shared memory, then computes a shard's gradient (written back to
 * shared memory) or decodes a batch of evaluation prompts, and answers with the result.
 */
import { parentPort, workerData } from "node:worker_threads";
import { useBackend } from "../backend/select.ts";
import { jsBackend } from "../backend/js/index.ts";
import { type RavenModel, initModel } from "../model/model.ts";
import { Rng } from "../tensor/random.ts";
import { jobGradient, packGradients, unpackParameters } from "../train/data-parallel.ts";
import { decodeJob } from "../train/evaluate.ts";
import type { ModelJob, WorkerReply, WorkerSetup } from "./model-workers.ts";
import { loadNativeBackend } from "./native.ts";

const port = parentPort;
if (port === null) throw new Error("model-worker.ts runs as a worker thread only");
const setup = workerData as WorkerSetup;
useBackend(setup.backend === "native" ? nativeBackend() : jsBackend);
const model = initModel(setup.config, new Rng(0)); // its weights: read before each job
const params = new Float32Array(setup.params);
const grads = new Float32Array(setup.grads);
port.on("message", (job: ModelJob) => {
  port.postMessage(run(model, job));
});
port.postMessage({ kind: "ready" } satisfies WorkerReply);

function run(m: RavenModel, job: ModelJob): WorkerReply {
  try {
    unpackParameters(m, params);
    return answer(m, job);
  } catch (e) {
    return { kind: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

function answer(m: RavenModel, job: ModelJob): WorkerReply {
  switch (job.kind) {
    case "gradient": {
      const g = jobGradient(m, job.job);
      packGradients(m, grads);
      return { kind: "gradient", ...g };
    }
    case "decode":
      return { kind: "decode", rows: decodeJob(m, job.job, job.options) };
    default:
      return job satisfies never;
  }
}

function nativeBackend() {
  const native = loadNativeBackend();
  if ("error" in native) throw new Error(native.error);
  return native.backend;
}
