// `loom eval`: accuracy vs test-time recurrence r (greedy decoding, exact match), per difficulty,
// as a table, a JSON file and optionally a plot.
import { type ExitName, defaultThreshold, exitNames } from "../../src/generate/exit.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { type Example, encodeExample } from "../../src/data/example.ts";
import { parseExamplesJsonl } from "../../src/data/jsonl.ts";
import {
  TASK_NAMES,
  defaultTestDifficulties,
  generateTask,
  isTaskName,
} from "../../src/data/tasks/index.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import type { RavenModel } from "../../src/model/model.ts";
import { loadModel } from "../../src/node/model-io.ts";
import { schemeColors, writePng, type VegaLiteSpec } from "../../src/node/plot.ts";
import { evaluateOnThreads } from "../../src/node/parallel-eval.ts";
import { usableCores } from "../../src/node/model-workers.ts";
import {
  type EvalOptions,
  type EvalRow,
  type Prediction,
  formatTable,
} from "../../src/train/evaluate.ts";
import { CliError, type Flags, list, need, num, str } from "../args.ts";
import type { Command } from "../command.ts";
import { ProgressBar } from "../progress.ts";

export const evalCommand: Command = {
  name: "eval",
  summary: "accuracy vs recurrence steps r (greedy answers, exact match), per difficulty",
  usage:
    "loom eval --model DIR (--data FILE.jsonl | --task NAME) --steps 1,2,4,8,16,32 " +
    "[--exit CRITERION --exit-threshold X] [--json OUT.json] [--plot OUT.png]",
  flags: {
    model: { type: "string", help: "model directory (with tokenizer.json)", required: true },
    data: { type: "string", help: "JSONL examples {prompt, answer, difficulty?}" },
    task: { type: "string", help: `built-in task (test split): ${TASK_NAMES.join(", ")}` },
    count: { type: "int", help: "--task: examples per difficulty", default: 50 },
    difficulties: {
      type: "list",
      help: "--task: difficulties (default: up to 2x the training ones)",
    },
    steps: { type: "list", help: "recurrence counts r", default: [1, 2, 4, 8, 16, 32] },
    exit: {
      type: "string",
      help: "per-token exit criterion, r = the cap",
      choices: exitNames,
      default: "none",
    },
    "exit-threshold": { type: "number", help: "threshold of --exit (default: the reference's)" },
    json: {
      type: "string",
      help: "write {results: [{steps, difficulty, accuracy, count, meanSteps}]}",
    },
    plot: { type: "string", help: "write accuracy vs steps as PNG, one line per difficulty" },
    predictions: {
      type: "string",
      help:
        "write each example's whole answer at each r as JSONL: " +
        "{steps, difficulty, prompt, answer, prediction, correct, tokenSteps}",
    },
    limit: { type: "int", help: "use only the first N examples" },
    "batch-size": { type: "int", help: "rows per forward", default: 64 },
    seed: { type: "int", help: "seed of the random initial states", default: 0 },
    workers: {
      type: "int",
      help: "threads decoding batches side by side (default: one per core, LOOM_THREADS)",
    },
    quiet: { type: "boolean", help: "no progress bar" },
  },
  async run({ flags }) {
    const dir = need("eval", flags, "model");
    const { model, tokenizer } = loadModel(dir);
    if (tokenizer === null) throw new CliError(`${dir}: no tokenizer.json (train with loom train)`);
    const tok = CharTokenizer.fromJSON(tokenizer);
    const examples = readExamples(flags);
    warnTooLong(examples, tok, model.config.blockSize);
    const steps = list(flags, "steps") ?? [1, 2, 4, 8, 16, 32];
    if (steps.some((r) => r < 1)) throw new CliError("loom eval: --steps must be >= 1");
    const workers = num(flags, "workers");
    if (workers !== undefined && workers < 1) {
      throw new CliError(`loom eval: --workers must be >= 1, got ${workers}`);
    }
    const exit = (str(flags, "exit") ?? "none") as ExitName;
    const threshold = num(flags, "exit-threshold") ?? defaultThreshold(exit);
    const predictionsFile = str(flags, "predictions");
    const lines: string[] = [];
    const rows = await runEval(model, tok, examples, steps, {
      exit,
      threshold,
      batchSize: num(flags, "batch-size") ?? 64,
      seed: num(flags, "seed") ?? 0,
      quiet: flags.quiet === true,
      workers: workers ?? 0,
      onPrediction:
        predictionsFile === undefined ? undefined : (p) => lines.push(predictionLine(examples, p)),
    });
    console.log(formatTable(rows));
    if (predictionsFile !== undefined) writeFileSync(predictionsFile, lines.join(""));
    const json = str(flags, "json");
    if (json !== undefined) writeFileSync(json, `${JSON.stringify({ results: rows }, null, 2)}\n`);
    const plot = str(flags, "plot");
    if (plot !== undefined)
      await writePng(plot, accuracyPlot(rows, `accuracy vs recurrence (${dir})`));
  },
};

export async function runEval(
  model: RavenModel,
  tok: CharTokenizer,
  examples: readonly Example[],
  steps: readonly number[],
  o: {
    exit: ExitName;
    threshold: number;
    batchSize: number;
    seed: number;
    quiet: boolean;
    workers: number;
    /** Each example's whole answer at each r (decoded past its first wrong token). */
    onPrediction?: ((p: Prediction) => void) | undefined;
  },
): Promise<EvalRow[]> {
  const ui = new ProgressBar({ quiet: o.quiet });
  const total = steps.reduce((a, r) => a + r, 0) * examples.length;
  let done = 0;
  const options: EvalOptions = {
    steps,
    exit: o.exit,
    exitThreshold: o.threshold,
    batchSize: o.batchSize,
    seed: o.seed,
    whole: o.onPrediction !== undefined,
    onPrediction: o.onPrediction,
    onProgress: (job) => {
      done += job.r * job.rows.length;
      ui.update(done / total, `${job.rows.length} examples at r=${job.r} done`);
    },
  };
  const threads = o.workers > 0 ? o.workers : usableCores();
  const rows = await evaluateOnThreads(model, tok, examples, options, threads);
  ui.done();
  return rows;
}

/** A line of the --predictions file. */
function predictionLine(examples: readonly Example[], p: Prediction): string {
  const { prompt, answer, difficulty } = examples[p.index];
  const { steps, prediction, correct, tokenSteps } = p;
  const line = { steps, difficulty: difficulty ?? null, prompt, answer, prediction, correct };
  return `${JSON.stringify({ ...line, tokenSteps })}\n`;
}

/** Examples whose prompt and answer do not fit the context cannot be answered: say so. */
function warnTooLong(examples: readonly Example[], tok: CharTokenizer, blockSize: number): void {
  // decoding feeds <bos> prompt <sep> and every answer token but the last
  const tooLong = examples.filter((e) => encodeExample(tok, e).ids.length - 1 > blockSize);
  if (tooLong.length === 0) return;
  const shortest = Math.min(...tooLong.map((e) => e.difficulty ?? Infinity));
  console.error(
    `loom eval: ${tooLong.length} of ${examples.length} examples are longer than the model's ` +
      `context (block_size ${blockSize}) and count as wrong` +
      (Number.isFinite(shortest) ? ` (from difficulty ${shortest})` : ""),
  );
}

function readExamples(flags: Flags): Example[] {
  const data = str(flags, "data");
  const task = str(flags, "task");
  if ((data === undefined) === (task === undefined)) {
    throw new CliError("loom eval: give exactly one of --data FILE.jsonl or --task NAME");
  }
  let examples: Example[];
  if (data !== undefined) {
    let text: string;
    try {
      text = readFileSync(data, "utf8");
    } catch (e) {
      throw new CliError(
        `cannot read JSONL file ${data} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    examples = parseExamplesJsonl(text, data);
    if (examples.length === 0) throw new CliError(`${data}: no examples`);
  } else {
    if (task === undefined || !isTaskName(task)) {
      throw new CliError(
        `loom eval: unknown task "${String(task)}" (tasks: ${TASK_NAMES.join(", ")})`,
      );
    }
    const difficulties = list(flags, "difficulties") ?? defaultTestDifficulties(task);
    examples = tryGenerate(task, {
      split: "test",
      count: (num(flags, "count") ?? 50) * difficulties.length,
      seed: 0,
      difficulties,
    });
  }
  const limit = num(flags, "limit");
  return limit === undefined ? examples : examples.slice(0, limit);
}

/** The legend entry of the rows over all examples (difficulty null). */
const ALL = "all";

/**
 * Accuracy vs steps (log2 axis), one line per difficulty, easy to hard, plus "all" (black,
 * dashed). Beyond 10 levels the categorical palette would repeat, so the lines are coloured
 * on a sequential scale.
 */
export function accuracyPlot(rows: readonly EvalRow[], title: string): VegaLiteSpec {
  const values = rows.map((r) => ({
    steps: r.steps,
    accuracy: r.accuracy,
    difficulty: r.difficulty === null ? ALL : String(r.difficulty),
  }));
  const levels = [...new Set(rows.flatMap((r) => (r.difficulty === null ? [] : [r.difficulty])))]
    .sort((a, b) => a - b)
    .map(String);
  const palette = schemeColors(levels.length > 10 ? "viridis" : "category10", levels.length);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    width: 480,
    height: 300,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "steps",
        type: "quantitative",
        scale: { type: "log", base: 2 },
        title: "recurrence steps r",
      },
      y: {
        field: "accuracy",
        type: "quantitative",
        scale: { domain: [0, 1] },
        title: "exact-match accuracy",
      },
      color: {
        field: "difficulty",
        type: "nominal",
        title: "difficulty",
        scale: { domain: [...levels, ALL], range: [...palette, "black"] },
      },
      strokeDash: {
        condition: { test: `datum.difficulty === '${ALL}'`, value: [4, 2] },
        value: [1, 0],
      },
    },
  };
}

/** generateTask with its RangeError (a bad difficulty or count) as a one-line CLI error. */
function tryGenerate(...args: Parameters<typeof generateTask>): ReturnType<typeof generateTask> {
  try {
    return generateTask(...args);
  } catch (e) {
    if (e instanceof RangeError) throw new CliError(e.message);
    throw e;
  }
}
