// `loom train` settings: flags, --config file and --key value overrides resolved into the
// TrainSettings of a run, and the model config and recipe those overrides describe.
import { resolve } from "node:path";
import { type TaskName, isTaskName, TASK_NAMES } from "../../src/data/tasks/index.ts";
import { paddedVocabSize } from "../../src/data/tokenizer.ts";
import { ConfigError, configFromJson, configToJson } from "../../src/model/config-json.ts";
import { type ModelConfig, presets } from "../../src/model/config.ts";
import { type Recipe, RECIPE_KEYS, defaultRecipe } from "../../src/train/recipe.ts";
import { CliError, type Flags, bool, num, str } from "../args.ts";
import { readJson } from "../io.ts";
import { parseDuration } from "../progress.ts";

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
  /**
   * Train at least this many steps, past the time budget if this machine is too slow for them
   * (the schedule then spans these steps); null: the budget decides.
   */
  minSteps: number | null;
  /** Settings from --config and --key value overrides. */
  overrides: Record<string, unknown>;
  overrideSource: string;
  checkpointEverySeconds: number;
  evalEvery: number; // steps; 0 = auto
  quiet: boolean;
  /** The run directory to continue (--resume); `source` is then read from its checkpoint. */
  resume?: string;
}

export const DEFAULT_BUDGET_SECONDS = 600;
/**
 * Training examples generated for --task: a run of ~6,000 steps of 64 sees 400k examples, so
 * 20k (the old default) are each seen 20 times and get memorized (E9 in bench/recipe-notes.md).
 */
export const DEFAULT_TASK_COUNT = 200000;

export function settingsFromFlags(flags: Flags, overrides: Record<string, string>): TrainSettings {
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
  const budget = timeBudgetFromFlags(flags);
  const maxSteps = num(flags, "max-steps") ?? null;
  const minSteps = num(flags, "min-steps") ?? null;
  if (maxSteps !== null && minSteps !== null && minSteps > maxSteps) {
    throw new CliError(`loom train: --min-steps ${minSteps} is more than --max-steps ${maxSteps}`);
  }
  const ckText = str(flags, "checkpoint-every") ?? "2m";
  const ckEvery = parseDuration(ckText);
  if (ckEvery === null)
    throw new CliError(`loom train: --checkpoint-every must look like 2m, got "${ckText}"`);
  const configPath = str(flags, "config");
  const fileSettings = configPath === undefined ? {} : readConfigFile(configPath);
  const source = sourceFromFlags(flags);
  return {
    source: resume === undefined ? source : { kind: "jsonl", path: "" },
    out,
    seed: num(flags, "seed") ?? 0,
    timeBudgetSeconds: budget,
    maxSteps,
    stopAfter: num(flags, "stop-after") ?? null,
    minSteps,
    overrides: { ...fileSettings, ...overrides },
    overrideSource: configPath ?? "command line",
    checkpointEverySeconds: ckEvery,
    evalEvery: num(flags, "eval-every") ?? 0,
    quiet: bool(flags, "quiet"),
    ...(resume !== undefined ? { resume } : {}),
  };
}

function timeBudgetFromFlags(flags: Flags): number | null {
  const budgetText = str(flags, "time-budget");
  if (budgetText === undefined) return null;
  const budget = parseDuration(budgetText);
  if (budget === null || budget <= 0) {
    throw new CliError(
      `loom train: --time-budget must look like 10m, 600s or 1h, got "${budgetText}"`,
    );
  }
  return budget;
}

/** The data flag given (the caller checked there is at most one); a placeholder for --resume. */
function sourceFromFlags(flags: Flags): DataSource {
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
  return source;
}

function readConfigFile(path: string): Record<string, unknown> {
  const json = readJson(path, "config file");
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CliError(`${path}: expected a JSON object of settings`);
  }
  return json as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Model config and recipe

// config.json's fields (with loom's extensions set, so that their optional fields are listed)
const MODEL_KEYS: Record<string, string> = Object.fromEntries(
  Object.keys(
    configToJson({
      ...presets.tiny,
      ...{ attentionWindow: 1, rotaryPct: 0, abacusPlaces: 1, abacusDigits: [5] },
      attentionScale: "log-length",
      rotaryPositions: "place",
    }),
  ).map((k) => [normKey(k), k]),
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
 * r̄ = 4 with k = 4; additive injection and a zero initial state (the recipe notes' X-E: a random
 * s_0 slowed learning several-fold); full attention (the trainer then suggests a window from the
 * data: src/train/window.ts) and a context to match (`autoBlockSize`).
 */
export function autoModelConfig(
  budgetSeconds: number | null,
  vocab: number,
  longest: number,
): ModelConfig {
  const b = budgetSeconds ?? DEFAULT_BUDGET_SECONDS;
  const width = b <= 1800 ? 64 : 96;
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
    blockSize: autoBlockSize(longest, 0),
    meanRecurrence: 4,
    meanBackpropDepth: 4,
    injectionType: "add",
    stateInit: "zero",
    samplingScheme: "poisson-lognormal-filling",
    attentionWindow: 0,
  };
}

/**
 * The default context (block_size) for training sequences of up to `longest` tokens: twice that
 * for full attention, eight times with a sliding window (the model meant for longer inputs, whose
 * attention costs the same per token at any length); at least 64, a multiple of 16.
 */
export function autoBlockSize(longest: number, attentionWindow: number): number {
  const factor = attentionWindow > 0 ? 8 : 2;
  return Math.max(64, Math.ceil((factor * longest) / 16) * 16);
}

export function resolveConfig(
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
