// `loom data`: write a built-in task's train or test split as JSONL.
import { writeFileSync } from "node:fs";
import { formatExamplesJsonl } from "../../src/data/jsonl.ts";
import {
  TASK_NAMES,
  defaultTestDifficulties,
  defaultTrainDifficulties,
  generateTask,
  isTaskName,
} from "../../src/data/tasks/index.ts";
import type { Split } from "../../src/data/tasks/index.ts";
import { CliError, list, need, num, str } from "../args.ts";
import type { Command } from "../command.ts";

export const dataCommand: Command = {
  name: "data",
  summary: "write a built-in reasoning task as JSONL (prompt, answer, difficulty)",
  usage:
    "loom data --task NAME --split train|test --out FILE.jsonl [--count N] [--difficulties 1,2,3]",
  flags: {
    task: { type: "string", help: `task: ${TASK_NAMES.join(", ")}`, required: true },
    split: { type: "string", help: "which split", choices: ["train", "test"], default: "train" },
    out: { type: "string", help: "output JSONL file", required: true },
    count: { type: "int", help: "examples (default: 20000 train, 50 per difficulty test)" },
    difficulties: {
      type: "list",
      help: "difficulties (default: the training ones; test: up to twice the hardest)",
    },
    seed: { type: "int", help: "seed", default: 0 },
  },
  async run({ flags }) {
    const task = need("data", flags, "task");
    if (!isTaskName(task)) {
      throw new CliError(`loom data: unknown task "${task}" (tasks: ${TASK_NAMES.join(", ")})`);
    }
    const split = (str(flags, "split") ?? "train") as Split;
    const difficulties =
      list(flags, "difficulties") ??
      (split === "train" ? defaultTrainDifficulties(task) : defaultTestDifficulties(task));
    const count = num(flags, "count") ?? (split === "train" ? 20000 : 50 * difficulties.length);
    const examples = tryGenerate(task, {
      split,
      count,
      seed: num(flags, "seed") ?? 0,
      difficulties,
    });
    const out = need("data", flags, "out");
    writeFileSync(out, formatExamplesJsonl(examples));
    console.error(`wrote ${examples.length} ${task} ${split} examples to ${out}`);
    await Promise.resolve();
  },
};

/** generateTask with its RangeError (a bad difficulty or count) as a one-line CLI error. */
function tryGenerate(...args: Parameters<typeof generateTask>): ReturnType<typeof generateTask> {
  try {
    return generateTask(...args);
  } catch (e) {
    if (e instanceof RangeError) throw new CliError(e.message);
    throw e;
  }
}
