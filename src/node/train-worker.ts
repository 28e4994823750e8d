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
import { tensor } from "../tensor/tensor.ts";
import { packGradients, unpackParameters } from "../train/data-parallel.ts";
import { batchGradient } from "../train/trainer.ts";
import type { WorkerJob, WorkerReply, WorkerSetup } from "./data-parallel.ts";
import { limitNativeThreads, loadNativeBackend } from "./native.ts";

const port = parentPort;
if (port === null) throw new Error("train-worker.ts runs as a worker thread only");
const setup = workerData as WorkerSetup;
useBackend(setup.backend === "native" ? nativeBackend() : jsBackend);
limitNativeThreads(1);
const model = initModel(setup.config, new Rng(0)); // the weights come with each job
const params = new Float32Array(setup.params);
const grads = new Float32Array(setup.grads);
port.on("message", (job: WorkerJob) => {
  port.postMessage(run(model, job));
});
port.postMessage({ kind: "ready" } satisfies WorkerReply);

function run(m: RavenModel, job: WorkerJob): WorkerReply {
  try {
    unpackParameters(m, params);
    const { batch, depth, supervisedDepths, init } = job;
    const shape = [batch.batch, batch.seqLen, m.config.nEmbd];
    const g = batchGradient(m, batch, {
      depth,
      supervisedDepths,
      init: init === null ? { mode: "zero" } : { mode: "given", state: tensor(init, shape) },
    });
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
