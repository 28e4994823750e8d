// `loom train`: randomized-depth truncated-backprop training on JSONL examples, a built-in task
// or plain text, with a progress bar, metrics JSONL, periodic evaluation, atomic checkpoints,
// --resume, Ctrl-C handling and a time budget. The loop itself is src/train/trainer.ts.
import { backend } from "../../src/backend/select.ts";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DataError } from "../../src/data/errors.ts";
import { type EncodedExample, type Example, encodeExample } from "../../src/data/example.ts";
import { formatExamplesJsonl, parseExamplesJsonl, textToTokens } from "../../src/data/jsonl.ts";
import {
  type TaskName,
  defaultTestDifficulties,
  defaultTrainDifficulties,
  generateTask,
  isTaskName,
  TASK_NAMES,
} from "../../src/data/tasks/index.ts";
import { CharTokenizer, buildCharTokenizer, paddedVocabSize } from "../../src/data/tokenizer.ts";
import { ConfigError, configFromJson, configToJson } from "../../src/model/config-json.ts";
import { type ModelConfig, presets } from "../../src/model/config.ts";
import { initParams } from "../../src/model/params.ts";
import { type RavenModel, createModel, initModel } from "../../src/model/model.ts";
import { modelStats } from "../../src/model/stats.ts";
import {
  isCheckpoint,
  loadCheckpoint,
  recoverCheckpointDir,
  saveCheckpoint,
  type TrainerStateJson,
} from "../../src/node/checkpoint-io.ts";
import { Rng } from "../../src/tensor/random.ts";
import { backward } from "../../src/tensor/tensor.ts";
import { evaluate, formatTable, type EvalRow } from "../../src/train/evaluate.ts";
import { type Recipe, RECIPE_KEYS, defaultRecipe, validateRecipe } from "../../src/train/recipe.ts";
import {
  type StepMetrics,
  type TrainData,
  type TrainState,
  batchAt,
  batchLoss,
  createTrainState,
  stateInitAt,
  trainLoop,
} from "../../src/train/trainer.ts";
import { CliError, type Flags, bool, num, str } from "../args.ts";
import type { Command } from "../command.ts";
import { readJson } from "../io.ts";
import { ProgressBar, formatCount, formatDuration, parseDuration } from "../progress.ts";

/** Where the training data comes from (stored in trainer-state.json to rebuild it on resume). */
export type DataSource =
  | { kind: "task"; task: TaskName; count: number; seed: number }
  | { kind: "jsonl"; path: string }
  | { kind: "text"; path: string };

/** Everything a run needs, resolved from flags, config file and overrides. */
export interface TrainSettings {
  source: DataSource;
  out: string;
  seed: number;
  timeBudgetSeconds: number | null;
  maxSteps: number | null;
  /** Stop after this many steps of this invocation (the schedule is unchanged). */
  stopAfter: number | null;
  /** Settings from --config and --key value overrides. */
  overrides: Record<string, unknown>;
  overrideSource: string;
  checkpointEverySeconds: number;
  evalEvery: number; // steps; 0 = auto
  quiet: boolean;
}

export interface TrainResult {
  dir: string;
  steps: number;
  finished: boolean;
  interrupted: boolean;
  lastLoss: number;
  tokenizer: CharTokenizer;
  model: RavenModel;
  /** Held-out in-distribution examples (tasks and JSONL), for a final evaluation. */
  evalExamples: Example[];
}

const DEFAULT_BUDGET_SECONDS = 600;
/**
 * Training examples generated for --task: a run of ~6,000 steps of 64 sees 400k examples, so
 * 20k (the old default) are each seen 20 times and get memorized (E9 in bench/recipe-notes.md).
 */
export const DEFAULT_TASK_COUNT = 200000;

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
      default: 200000,
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

function settingsFromFlags(flags: Flags, overrides: Record<string, string>): TrainSettings {
  const resume = str(flags, "resume");
  const sources = ["data", "task", "text"].filter((k) => str(flags, k) !== undefined);
  if (resume === undefined && sources.length !== 1) {
    throw new CliError("loom train: give exactly one of --data, --task, --text (or --resume DIR)");
  }
  if (resume !== undefined && sources.length > 0) {
    throw new CliError(
      "loom train: --resume continues the saved run's data; drop --data/--task/--text",
    );
  }
  const out = str(flags, "out") ?? resume;
  if (out === undefined) throw new CliError("loom train: missing required flag --out");
  const budgetText = str(flags, "time-budget");
  let budget: number | null = null;
  if (budgetText !== undefined) {
    budget = parseDuration(budgetText);
    if (budget === null || budget <= 0) {
      throw new CliError(
        `loom train: --time-budget must look like 10m, 600s or 1h, got "${budgetText}"`,
      );
    }
  }
  const ckText = str(flags, "checkpoint-every") ?? "2m";
  const ckEvery = parseDuration(ckText);
  if (ckEvery === null)
    throw new CliError(`loom train: --checkpoint-every must look like 2m, got "${ckText}"`);
  const configPath = str(flags, "config");
  const fileSettings = configPath === undefined ? {} : readConfigFile(configPath);
  let source: DataSource = { kind: "jsonl", path: "" };
  const task = str(flags, "task");
  if (task !== undefined) {
    if (!isTaskName(task)) {
      throw new CliError(`loom train: unknown task "${task}" (tasks: ${TASK_NAMES.join(", ")})`);
    }
    source = {
      kind: "task",
      task,
      count: num(flags, "count") ?? DEFAULT_TASK_COUNT,
      seed: num(flags, "seed") ?? 0,
    };
  }
  const data = str(flags, "data");
  if (data !== undefined) source = { kind: "jsonl", path: resolve(data) };
  const text = str(flags, "text");
  if (text !== undefined) source = { kind: "text", path: resolve(text) };
  return {
    source: resume === undefined ? source : { kind: "jsonl", path: "" },
    out,
    seed: num(flags, "seed") ?? 0,
    timeBudgetSeconds: budget,
    maxSteps: num(flags, "max-steps") ?? null,
    stopAfter: num(flags, "stop-after") ?? null,
    overrides: { ...fileSettings, ...overrides },
    overrideSource: configPath ?? "command line",
    checkpointEverySeconds: ckEvery,
    evalEvery: num(flags, "eval-every") ?? 0,
    quiet: bool(flags, "quiet"),
    ...(resume !== undefined ? { resume } : {}),
  };
}

function readConfigFile(path: string): Record<string, unknown> {
  const json = readJson(path, "config file");
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CliError(`${path}: expected a JSON object of settings`);
  }
  return json as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Data

interface LoadedData {
  train: TrainData;
  tokenizer: CharTokenizer;
  /** In-distribution held-out examples for periodic evaluation (none for text). */
  evalExamples: Example[];
  /** Longest sequence the model must fit, in tokens (including <bos>, <sep>, <eos>). */
  longest: number;
  /** Where the longest training example is, for the error message. */
  longestWhere: string;
  /** Test examples up to twice the training difficulty (tasks only), written to DIR/test.jsonl. */
  testExamples: Example[];
}

function loadData(
  source: DataSource,
  tokenizer: CharTokenizer | null,
  blockSize: number | null,
): LoadedData {
  switch (source.kind) {
    case "task": {
      const train = generateTask(source.task, {
        split: "train",
        count: source.count,
        seed: source.seed,
        difficulties: defaultTrainDifficulties(source.task),
      });
      const evalExamples = generateTask(source.task, {
        split: "test",
        count: 8 * defaultTrainDifficulties(source.task).length * 4,
        seed: source.seed,
        difficulties: defaultTrainDifficulties(source.task),
      });
      const testDiffs = defaultTestDifficulties(source.task);
      const testExamples = generateTask(source.task, {
        split: "test",
        count: 50 * testDiffs.length,
        seed: source.seed,
        difficulties: testDiffs,
      });
      const tok =
        tokenizer ??
        buildCharTokenizer([...train, ...testExamples].flatMap((e) => [e.prompt, e.answer]));
      return examplesData(
        train,
        tok,
        `task ${source.task}`,
        evalExamples.slice(0, 200),
        testExamples,
      );
    }
    case "jsonl": {
      const text = readText(source.path, "JSONL file");
      const all = parseExamplesJsonl(text, source.path);
      if (all.length === 0) throw new DataError(`${source.path}: no examples (the file is empty)`);
      const tok = tokenizer ?? buildCharTokenizer(all.flatMap((e) => [e.prompt, e.answer]));
      // hold out up to 5% (at most 200) for evaluation when there is enough data
      const nEval = all.length >= 400 ? Math.min(200, Math.floor(all.length * 0.05)) : 0;
      const order = Array.from({ length: all.length }, (_, i) => i);
      const rng = new Rng(0x5eed);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      const held = new Set(order.slice(0, nEval));
      const train = all.filter((_, i) => !held.has(i));
      const evalExamples = nEval > 0 ? all.filter((_, i) => held.has(i)) : train.slice(0, 100);
      return examplesData(train, tok, source.path, evalExamples, [], all);
    }
    case "text": {
      const text = readText(source.path, "text file");
      if (text.length < 2) throw new DataError(`${source.path}: the text is empty`);
      const tok = tokenizer ?? buildCharTokenizer([text]);
      const tokens = textToTokens(tok, text);
      const seqLen = Math.min(blockSize ?? 128, 128, tokens.length - 1);
      if (seqLen < 1) throw new DataError(`${source.path}: too short to train on`);
      return {
        train: { kind: "text", tokens, seqLen },
        tokenizer: tok,
        evalExamples: [],
        longest: seqLen,
        longestWhere: source.path,
        testExamples: [],
      };
    }
    default:
      return source satisfies never;
  }
}

function examplesData(
  train: Example[],
  tok: CharTokenizer,
  where: string,
  evalExamples: Example[],
  testExamples: Example[],
  all: Example[] = train,
): LoadedData {
  const encoded: EncodedExample[] = train.map((e) => encodeExample(tok, e));
  const difficulty = train.map((e) => e.difficulty);
  let longest = 0;
  let longestWhere = where;
  all.forEach((e, i) => {
    const n = encodeExample(tok, e).ids.length;
    if (n > longest) {
      longest = n;
      longestWhere =
        where.endsWith(".jsonl") || where.includes("/") ? `${where} example ${i + 1}` : where;
    }
  });
  return {
    train: {
      kind: "examples",
      encoded,
      ...(difficulty.some((d) => d !== undefined) ? { difficulty } : {}),
    },
    tokenizer: tok,
    evalExamples,
    longest,
    longestWhere,
    testExamples,
  };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new CliError(
      `cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Settings: model config and recipe

const MODEL_KEYS: Record<string, string> = Object.fromEntries(
  Object.keys(configToJson(presets.tiny)).map((k) => [normKey(k), k]),
);

function normKey(k: string): string {
  return k.replace(/[-_]/g, "").toLowerCase();
}

function coerce(v: unknown): unknown {
  if (typeof v !== "string") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  if (v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return v;
}

/** Split settings into model config.json fields and recipe fields; unknown keys are errors. */
export function splitSettings(
  settings: Record<string, unknown>,
  source: string,
): { model: Record<string, unknown>; recipe: Partial<Recipe> } {
  const recipeByNorm = new Map(RECIPE_KEYS.map((k) => [normKey(k), k]));
  const model: Record<string, unknown> = {};
  const recipe: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    const n = normKey(key);
    const rk = recipeByNorm.get(n);
    if (rk !== undefined) {
      const want = typeof defaultRecipe[rk];
      const v = coerce(value);
      if (typeof v !== want) {
        throw new ConfigError(
          `${source}: field "${key}" must be a ${want}, got ${JSON.stringify(value)}`,
        );
      }
      recipe[rk] = v;
    } else if (n in MODEL_KEYS) {
      model[MODEL_KEYS[n]] = coerce(value);
    } else {
      throw new ConfigError(
        `${source}: unknown setting "${key}" (recipe: ${RECIPE_KEYS.join(", ")}; model: config.json fields such as n_embd, mean_recurrence, injection_type)`,
      );
    }
  }
  return { model, recipe: recipe };
}

/**
 * The model for a budget when the user gives no sizes: width 64 up to 30 minutes, 96 beyond (a
 * step costs about the same at 64 and 96 per token, but on this CPU the number of optimizer steps
 * is what a run lacks: bench/recipe-notes.md); 4 heads; prelude/core/coda 1/2/1; MLP 2.75x;
 * r̄ = 3 with k = 2 (cheap steps; the loss at both gradient depths); additive injection and a
 * random (like-init) initial state; context twice the longest training sequence.
 */
export function autoModelConfig(
  budgetSeconds: number | null,
  vocab: number,
  longest: number,
): ModelConfig {
  const b = budgetSeconds ?? DEFAULT_BUDGET_SECONDS;
  const width = b <= 1800 ? 64 : 96;
  const blockSize = Math.max(64, Math.ceil((2 * longest) / 16) * 16);
  return {
    ...presets.small,
    nEmbd: width,
    nHeads: 4,
    nLayersInPrelude: 1,
    nLayersInRecurrentBlock: 2,
    nLayersInCoda: 1,
    intermediateSize: Math.round((width * 2.75) / 16) * 16,
    vocabSize: vocab,
    paddedVocabSize: paddedVocabSize(vocab),
    blockSize,
    meanRecurrence: 3,
    meanBackpropDepth: 2,
    injectionType: "add",
    stateInit: "like-init",
    samplingScheme: "poisson-lognormal-filling",
  };
}

function resolveConfig(
  base: ModelConfig,
  model: Record<string, unknown>,
  source: string,
): ModelConfig {
  // derived fields must follow the overrides, so drop them and let configFromJson recompute
  const derived = new Set([
    "n_layers",
    "head_dim",
    "num_key_value_heads",
    "effective_expected_depth",
    "init_values",
  ]);
  const json = Object.fromEntries(
    Object.entries({ ...configToJson(base), ...model }).filter(([k]) => !derived.has(k)),
  );
  return configFromJson(json, source);
}

// ---------------------------------------------------------------------------------------------
// The run

/** A run from start or from a checkpoint; the demo calls this too. */
export async function runTraining(
  s: TrainSettings & { resume?: string },
  ui: ProgressBar = new ProgressBar({ quiet: s.quiet }),
): Promise<TrainResult> {
  const dir = resolve(s.out);
  let state: TrainState;
  let recipe: Recipe;
  let source: DataSource;
  let data: LoadedData;
  let elapsedBefore = 0;
  let budget = s.timeBudgetSeconds;
  if (s.resume !== undefined) {
    recoverCheckpointDir(s.resume);
    const ck = loadCheckpoint(s.resume);
    if (resolve(s.resume) !== dir)
      throw new CliError("loom train: --resume writes back to the same directory; drop --out");
    recipe = { ...defaultRecipe, ...(ck.state.recipe as Partial<Recipe>) };
    source = ck.state.data as DataSource;
    const tok = CharTokenizer.fromJSON(ck.tokenizer);
    data = loadData(source, tok, ck.model.config.blockSize);
    state = {
      model: ck.model,
      opt: ck.opt,
      step: ck.state.step,
      totalSteps: s.maxSteps ?? ck.state.totalSteps,
      seed: ck.state.seed,
      tokens: ck.state.tokens,
    };
    elapsedBefore = ck.state.elapsedSeconds;
    if (budget === null && ck.state.timeBudgetSeconds !== null) {
      budget = Math.max(ck.state.timeBudgetSeconds - elapsedBefore, 0);
    }
    if (s.maxSteps !== null && s.maxSteps !== ck.state.totalSteps) {
      ui.log(`note: the LR schedule now spans ${s.maxSteps} steps (was ${ck.state.totalSteps})`);
    }
    ui.log(`resuming ${dir} at step ${state.step} of ${state.totalSteps}`);
    truncateMetrics(join(dir, "metrics.jsonl"), state.step);
  } else {
    checkOutDir(dir);
    source = s.source;
    const { model: modelSettings, recipe: recipeSettings } = splitSettings(
      s.overrides,
      s.overrideSource,
    );
    recipe = { ...defaultRecipe, ...recipeSettings };
    validateRecipe(recipe, s.overrideSource);
    if (budget === null && s.maxSteps === null) budget = DEFAULT_BUDGET_SECONDS;
    data = loadData(
      source,
      null,
      typeof modelSettings.block_size === "number" ? modelSettings.block_size : null,
    );
    const base = autoModelConfig(budget, data.tokenizer.vocabSize, data.longest);
    const config = resolveConfig(base, modelSettings, s.overrideSource);
    checkFits(config, data);
    const model = initModel(config, new Rng(s.seed));
    const totalSteps =
      s.maxSteps ??
      estimateSteps(model, recipe, data.train, s.seed, budget ?? DEFAULT_BUDGET_SECONDS);
    state = createTrainState(model, recipe, s.seed, totalSteps);
    describeRun(ui, model.config, recipe, totalSteps, budget, s);
  }
  const tokenizerJson = data.tokenizer.toJSON();
  const metricsPath = join(dir, "metrics.jsonl");
  const save = (finished: boolean) => {
    const st: TrainerStateJson = {
      version: 1,
      step: state.step,
      totalSteps: state.totalSteps,
      seed: state.seed,
      tokens: state.tokens,
      elapsedSeconds: elapsedBefore + (Date.now() - t0) / 1000,
      recipe: { ...recipe },
      data: { ...source },
      timeBudgetSeconds: s.resume !== undefined ? budgetTotal : budget,
      finished,
      rng: { scheme: "seed-step", seed: state.seed, step: state.step },
    };
    saveCheckpoint(dir, {
      model: state.model,
      opt: state.opt,
      tokenizer: tokenizerJson,
      state: st,
    });
  };
  const budgetTotal = budget === null ? null : elapsedBefore + budget;
  const t0 = Date.now();
  if (s.resume === undefined) {
    save(false); // the run exists on disk from the start: --resume works even after a crash
    if (data.testExamples.length > 0)
      writeFileSync(join(dir, "test.jsonl"), formatExamplesJsonl(data.testExamples));
  }

  let interrupted = false;
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints > 1) process.exit(130);
    interrupted = true;
    ui.log("Ctrl-C: finishing this step, saving a checkpoint (press again to quit at once)");
  };
  process.on("SIGINT", onSigint);

  const startStep = state.step;
  let lastLoss = Number.NaN;
  let lastSave = Date.now();
  let tokensThisRun = 0;
  const autoEvery = () => Math.max(Math.ceil(state.totalSteps / 8), 1);
  let evalEvery = s.evalEvery > 0 ? s.evalEvery : autoEvery();
  // A budget-fitted schedule is re-fitted to the measured speed: the start-up estimate times a
  // cold JIT on one batch (and a curriculum starts on short examples), so it can be off by 2x.
  const refit = s.resume === undefined && s.maxSteps === null && budget !== null;
  let refitFrom: { step: number; secs: number } | null = null;
  const refitSteps = (secs: number) => {
    if (!refit || budget === null || refitFrom === null) return;
    // the speed since the last re-fit: a curriculum makes later steps slower than early ones
    const perStep = (secs - refitFrom.secs) / Math.max(state.step - refitFrom.step, 1);
    refitFrom = { step: state.step, secs };
    const left = budget * 0.95 - secs;
    const total = state.step + Math.max(1, Math.floor(left / perStep));
    if (Math.abs(total - state.totalSteps) > 0.05 * state.totalSteps) {
      state.totalSteps = total;
      // the evaluation cadence follows the first re-fit only (a moving one would re-trigger)
      if (s.evalEvery <= 0 && state.step - startStep <= 40) evalEvery = autoEvery();
    }
  };
  const r = state.model.config.meanRecurrence;
  const evalSteps = [...new Set([1, r, 2 * r])];
  try {
    await trainLoop(state, recipe, data.train, {
      shouldStop: (st) => {
        if (interrupted) return true;
        if (s.stopAfter !== null && st.step - startStep >= s.stopAfter) return true;
        return budget !== null && (Date.now() - t0) / 1000 >= budget;
      },
      onStep: (m: StepMetrics, st) => {
        lastLoss = m.loss;
        tokensThisRun += m.inputTokens;
        const secs = (Date.now() - t0) / 1000;
        if (st.step - startStep === 10) refitFrom = { step: st.step, secs };
        if (st.step - startStep === 40) refitSteps(secs);
        appendFileSync(
          metricsPath,
          `${JSON.stringify({ type: "step", ...m, seconds: round(elapsedBefore + secs) })}\n`,
        );
        const stepsLeft = st.totalSteps - st.step;
        const perStep = secs / Math.max(st.step - startStep, 1);
        const eta = Math.min(stepsLeft * perStep, budget === null ? Infinity : budget - secs);
        const frac = Math.max(st.step / st.totalSteps, budget === null ? 0 : secs / budget);
        ui.update(
          frac,
          `step ${st.step}/${st.totalSteps} loss ${m.loss.toFixed(4)} r=${m.noGradSteps + m.gradSteps} ` +
            `${formatCount(tokensThisRun / Math.max(secs, 1e-3))} tok/s ETA ${formatDuration(eta)}`,
        );
        if (
          data.evalExamples.length > 0 &&
          (st.step % evalEvery === 0 || st.step === st.totalSteps)
        ) {
          const rows = evaluate(st.model, data.tokenizer, data.evalExamples.slice(0, 100), {
            steps: evalSteps,
            seed: 1,
          }).filter((row) => row.difficulty === null);
          appendFileSync(
            metricsPath,
            `${JSON.stringify({ type: "eval", step: st.step, results: rows })}\n`,
          );
          refitSteps((Date.now() - t0) / 1000);
          ui.log(
            `step ${st.step}: held-out accuracy ${rows.map((x) => `r=${x.steps} ${(100 * x.accuracy).toFixed(0)}%`).join(", ")}`,
          );
        }
        if ((Date.now() - lastSave) / 1000 >= s.checkpointEverySeconds) {
          save(false);
          lastSave = Date.now();
        }
      },
    });
  } finally {
    process.off("SIGINT", onSigint);
    ui.done();
  }
  const finished = state.step >= state.totalSteps;
  save(finished);
  return {
    dir,
    steps: state.step,
    finished,
    interrupted,
    lastLoss,
    tokenizer: data.tokenizer,
    model: state.model,
    evalExamples: data.evalExamples,
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Refuse to overwrite a run (or anything else) at --out: nothing already trained is lost. */
function checkOutDir(dir: string): void {
  recoverCheckpointDir(dir);
  if (!existsSync(dir)) return;
  if (isCheckpoint(dir)) {
    throw new CliError(
      `loom train: ${dir} already holds a training run; continue it with --resume ${dir} or choose another --out`,
    );
  }
  if (readdirSync(dir).length > 0) {
    throw new CliError(`loom train: ${dir} exists and is not empty; choose another --out`);
  }
}

function checkFits(config: ModelConfig, data: LoadedData): void {
  if (data.longest > config.blockSize) {
    throw new ConfigError(
      `field "block_size" (${config.blockSize}) is shorter than the longest training sequence ` +
        `(${data.longest} tokens, ${data.longestWhere})`,
    );
  }
  if (config.vocabSize < data.tokenizer.vocabSize) {
    throw new ConfigError(
      `field "vocab_size" (${config.vocabSize}) is smaller than the tokenizer's ${data.tokenizer.vocabSize} ids`,
    );
  }
}

/** Steps that fit the budget: time two steps at the mean depth on a throwaway model. */
function estimateSteps(
  model: RavenModel,
  recipe: Recipe,
  data: TrainData,
  seed: number,
  budget: number,
): number {
  const c = model.config;
  const scratch = createModel(c, initParams(c, new Rng(seed + 1)));
  const batch = batchAt(data, { ...recipe, curriculum: 0 }, seed, 0); // a full-mix batch
  const k = Math.min(c.meanBackpropDepth, c.meanRecurrence);
  const depth = { noGradSteps: c.meanRecurrence - k, gradSteps: k };
  let perStep = 0;
  for (let i = 0; i < 2; i++) {
    const t = performance.now();
    const { objective } = batchLoss(scratch, batch, {
      depth,
      supervisedDepths: recipe.supervisedDepths,
      init: stateInitAt(scratch, seed, 0),
    });
    backward(objective);
    perStep = (performance.now() - t) / 1000;
  }
  // ~12% of the time goes to evaluation and checkpoints; the optimizer update adds a little
  return Math.max(10, Math.floor((budget * 0.88) / (perStep * 1.05)));
}

function describeRun(
  ui: ProgressBar,
  c: ModelConfig,
  recipe: Recipe,
  totalSteps: number,
  budget: number | null,
  s: TrainSettings,
): void {
  const stats = modelStats(c, c.meanRecurrence, c.blockSize);
  const depth = recipe.depthScheme === "config" ? c.samplingScheme : recipe.depthScheme;
  ui.log(
    `model: width ${c.nEmbd}, ${c.nHeads} heads, prelude/core/coda ${c.nLayersInPrelude}/` +
      `${c.nLayersInRecurrentBlock}/${c.nLayersInCoda}, ${formatCount(stats.uniqueParams)} parameters, ` +
      `${c.injectionType} injection, state init ${c.stateInit}, context ${c.blockSize}`,
  );
  ui.log(
    `recipe: depth ${depth} r̄=${c.meanRecurrence} k=${c.meanBackpropDepth}, loss at the last ` +
      `${recipe.supervisedDepths} depths; ${recipe.optimizer} lr ${recipe.lr} ${recipe.schedule}, ` +
      `batch ${recipe.batchSize}, clip ${recipe.gradClip}` +
      (recipe.curriculum > 0 ? `, curriculum over ${recipe.curriculum * 100}% of the run` : "") +
      `; ${totalSteps} steps` +
      (budget !== null ? ` (fitted to the ${formatDuration(budget)} budget)` : "") +
      (s.maxSteps === null && budget !== null ? "" : ""),
  );
}

/** Drop metrics lines past `step` (from a run that crashed after its last checkpoint). */
function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => {
      if (line.trim() === "") return false;
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
  writeFileSync(path, keep.length > 0 ? `${keep.join("\n")}\n` : "");
}

export type { EvalRow };
export { formatTable };
