/**
 * A data-parallel training worker (started by src/node/data-parallel.ts): a replica of the
 * model that, per job, reads the weights from shared memory, computes the gradient of its shard
 * and writes it back to shared memory, then answers with the shard's loss.
 */
import { parentPort, workerData } from "node:worker_threads";
import { useBackend } from "../backend/select.ts";
import { jsBackend } from "../backend/js/index.ts";
import { type RavenModel, initModel } from "../model/model.ts";
import { Rng } from "../tensor/random.ts";
import { packGradients, unpackParameters } from "../train/data-parallel.ts";
import {
  type WorkerJob,
  type WorkerReply,
  type WorkerSetup,
  jobGradient,
} from "./data-parallel.ts";
import { limitNativeThreads, loadNativeBackend } from "./native.ts";

const port = parentPort;
if (port === null) throw new Error("train-worker.ts runs as a worker thread only");
const setup = workerData as WorkerSetup;
useBackend(setup.backend === "native" ? nativeBackend() : jsBackend);
limitNativeThreads(1);
const model = initModel(setup.config, new Rng(0)); // its weights: read before each job
const params = new Float32Array(setup.params);
const grads = new Float32Array(setup.grads);
port.on("message", (job: WorkerJob) => {
  port.postMessage(run(model, job));
});
port.postMessage({ kind: "ready" } satisfies WorkerReply);

function run(m: RavenModel, job: WorkerJob): WorkerReply {
  try {
    unpackParameters(m, params);
    const g = jobGradient(m, job);
    packGradients(m, grads);
    return { kind: "done", ...g };
  } catch (e) {
    return { kind: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

function nativeBackend() {
  const native = loadNativeBackend();
  if ("error" in native) throw new Error(native.error);
  return native.backend;
}
