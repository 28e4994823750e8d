// `loom forward`: logits and latent states of a batch; with labels, the loss and every gradient of
// one truncated-backprop step, under the reference's checkpoint key names.
import { writeSafetensorsFile, readSafetensorsFile } from "../../src/node/model-dir.ts";
import { loadModel } from "../../src/node/model-io.ts";
import { namedParameters } from "../../src/model/checkpoint.ts";
import { type NumSteps, type StateInitOption, forward } from "../../src/model/model.ts";
import { Rng } from "../../src/tensor/random.ts";
import { backward, tensor } from "../../src/tensor/tensor.ts";
import { CliError, type Flags, need, num, str } from "../args.ts";
import type { Command } from "../command.ts";
import { readTokenRows } from "../io.ts";

export const forwardCommand: Command = {
  name: "forward",
  summary: "run the model on token ids; write logits, latent states (and loss + gradients)",
  usage:
    "loom forward --model DIR --tokens FILE.json --steps N [--init-state zero|random|FILE.safetensors] [--seed S] --out OUT.safetensors\n" +
    "       loom forward --model DIR --tokens FILE.json --labels FILE.json --no-grad-steps n --grad-steps k --out OUT.safetensors",
  flags: {
    model: { type: "string", help: "model directory (config.json + safetensors)", required: true },
    tokens: {
      type: "string",
      help: "JSON array of equal-length token-id arrays (B, S)",
      required: true,
    },
    steps: {
      type: "int",
      help: "recurrences, no gradient (default: the config's mean_recurrence)",
    },
    labels: {
      type: "string",
      help: "JSON (B, S) pre-shifted targets, -100 = ignore: adds loss and grad.*",
    },
    "no-grad-steps": { type: "int", help: "with --labels: recurrences run without gradient" },
    "grad-steps": { type: "int", help: "with --labels: recurrences that carry gradient" },
    "init-state": {
      type: "string",
      help: "s_0: zero, random (the config's state_init) or a safetensors file with input_states [B,S,E]",
      default: "random",
    },
    seed: { type: "int", help: "seed of the random initial state", default: 0 },
    out: { type: "string", help: "output safetensors file", required: true },
  },
  async run({ flags }) {
    const { model } = loadModel(need("forward", flags, "model"));
    const rows = readTokenRows(need("forward", flags, "tokens"), true);
    const [B, S] = [rows.length, rows[0].length];
    const ids = Int32Array.from(rows.flat());
    const labels = readLabels(flags, B, S);
    const numSteps = stepsOf(flags, labels !== null, model.config.meanRecurrence);
    const init = initStateOf(flags, model.config.stateInit, B * S * model.config.nEmbd);
    const out = forward(model, ids, { batch: B, numSteps, init, ...(labels ? { labels } : {}) });
    const V = model.config.paddedVocabSize;
    const E = model.config.nEmbd;
    const tensors = [
      { name: "logits", shape: [B, S, V], data: out.logits.data },
      { name: "latent_states", shape: [B, S, E], data: out.latentStates.data },
    ];
    if (out.loss) {
      backward(out.loss);
      tensors.push({ name: "loss", shape: [1], data: out.loss.data });
      for (const [key, p] of namedParameters(model.params)) {
        tensors.push({
          name: `grad.${key}`,
          shape: [...p.shape],
          data: p.grad ?? new Float32Array(p.size),
        });
      }
    }
    writeSafetensorsFile(need("forward", flags, "out"), tensors);
    await Promise.resolve();
  },
};

function readLabels(flags: Flags, B: number, S: number): Int32Array | null {
  const path = str(flags, "labels");
  if (path === undefined) return null;
  const rows = readTokenRows(path, true);
  if (rows.length !== B || rows[0].length !== S) {
    throw new CliError(
      `${path}: labels are ${rows.length}x${rows[0].length}, tokens are ${B}x${S}`,
    );
  }
  return Int32Array.from(rows.flat());
}

function stepsOf(flags: Flags, training: boolean, dflt: number): NumSteps {
  const steps = num(flags, "steps");
  const n = num(flags, "no-grad-steps");
  const k = num(flags, "grad-steps");
  if (!training) {
    if (n !== undefined || k !== undefined)
      throw new CliError("loom forward: --no-grad-steps/--grad-steps need --labels");
    return steps ?? dflt;
  }
  if (steps !== undefined)
    throw new CliError(
      "loom forward: with --labels use --no-grad-steps and --grad-steps, not --steps",
    );
  if (n === undefined || k === undefined)
    throw new CliError("loom forward: --labels needs --no-grad-steps and --grad-steps");
  return { noGrad: n, withGrad: k };
}

function initStateOf(
  flags: Flags,
  mode: "like-init" | "normal" | "zero",
  size: number,
): StateInitOption {
  const init = str(flags, "init-state") ?? "random";
  if (init === "zero") return { mode: "zero" };
  if (init === "random") {
    return mode === "zero" ? { mode: "zero" } : { mode, rng: new Rng(num(flags, "seed") ?? 0) };
  }
  const file = readSafetensorsFile(init);
  const t = file.tensors.get("input_states");
  if (t === undefined) throw new CliError(`${init}: no tensor "input_states" (expected [B,S,E])`);
  const data = t.float32();
  if (data.length !== size)
    throw new CliError(`${init}: input_states has ${data.length} values, expected ${size} (B·S·E)`);
  return { mode: "given", state: tensor(data, t.shape) };
}
