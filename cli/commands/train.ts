// `loom train`: randomized-depth truncated-backprop training on JSONL examples, a built-in task
// or plain text, with a progress bar, metrics JSONL, periodic evaluation, atomic checkpoints,
// --resume, Ctrl-C handling and a time budget. Settings, data and the run are in cli/train/; the
// loop itself is src/train/trainer.ts.
import { backend } from "../../src/backend/select.ts";
import { TASK_NAMES } from "../../src/data/tasks/index.ts";
import type { Command } from "../command.ts";
import { runTraining } from "../train/run.ts";
import { DEFAULT_TASK_COUNT, settingsFromFlags } from "../train/settings.ts";

export const trainCommand: Command = {
  name: "train",
  summary: "train a recurrent-depth model (randomized depth, truncated backprop)",
  usage:
    "loom train (--data FILE.jsonl | --task NAME | --text FILE) --out DIR [--time-budget 10m] " +
    "[--max-steps N] [--config FILE.json] [--key value ...]\n" +
    "       loom train --resume DIR [--time-budget 5m] [--max-steps N]",
  flags: {
    data: { type: "string", help: "JSONL examples {prompt, answer, difficulty?}" },
    task: { type: "string", help: `built-in task: ${TASK_NAMES.join(", ")}` },
    text: { type: "string", help: "plain text file (character-level LM training)" },
    out: { type: "string", help: "output model directory (checkpoints go here)" },
    resume: { type: "string", help: "continue the run saved in this directory" },
    "time-budget": {
      type: "string",
      help: "stop after this much training time, e.g. 10m, 600s, 1h (default 10m without --max-steps)",
    },
    "max-steps": { type: "int", help: "length of the run in optimizer steps" },
    "min-steps": {
      type: "int",
      help: "train at least N steps, past --time-budget if this machine is too slow for them",
    },
    "stop-after": {
      type: "int",
      help: "stop (and save) after this many steps of this invocation; the schedule is unchanged",
    },
    config: {
      type: "string",
      help: "JSON object of model (config.json names) and recipe settings",
    },
    seed: { type: "int", help: "seed of the weights, depths, batches and states", default: 0 },
    count: {
      type: "int",
      help: "--task: training examples to generate (many: 20k are memorized in minutes)",
      default: DEFAULT_TASK_COUNT,
    },
    "checkpoint-every": {
      type: "string",
      help: "save a checkpoint this often (wall time)",
      default: "2m",
    },
    "eval-every": {
      type: "int",
      help: "evaluate every N steps (0 = about 8 times a run)",
      default: 0,
    },
    quiet: { type: "boolean", help: "no progress bar or messages" },
  },
  allowOverrides: true,
  async run({ flags, overrides }) {
    const backendName = backend().name;
    const settings = settingsFromFlags(flags, overrides);
    // the pure-JS fallback is 5-10x slower: say which backend a budget-fitted run gets
    if (!settings.quiet) console.error(`backend: ${backendName}`);
    const res = await runTraining(settings);
    if (!settings.quiet) {
      const how = res.interrupted ? "interrupted" : res.finished ? "finished" : "stopped";
      console.error(
        `${how} after step ${res.steps}; model saved in ${res.dir}` +
          (res.finished ? "" : ` (continue with: loom train --resume ${res.dir})`),
      );
    }
  },
};
