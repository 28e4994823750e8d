// The state a `loom train` invocation starts from: a new model sized to the data and the time
// budget, or a saved run read back from its checkpoint.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { ConfigError } from "../../src/model/config-json.ts";
import { type ModelConfig, describeExtensions } from "../../src/model/config.ts";
import { type RavenModel, createModel, initModel } from "../../src/model/model.ts";
import { initParams } from "../../src/model/params.ts";
import { modelStats } from "../../src/model/stats.ts";
import {
  isCheckpoint,
  loadCheckpoint,
  recoverCheckpointDir,
} from "../../src/node/checkpoint-io.ts";
import { autoWorkers } from "../../src/node/data-parallel.ts";
import { Rng } from "../../src/tensor/random.ts";
import { type Recipe, defaultRecipe, validateRecipe } from "../../src/train/recipe.ts";
import { type AbacusChoice, suggestAbacus } from "../../src/train/numbers.ts";
import {
  type DepthChoice,
  type WindowChoice,
  suggestAttentionWindow,
  suggestDepthPerDifficulty,
} from "../../src/train/window.ts";
import {
  type TrainData,
  type TrainState,
  batchAt,
  batchGradient,
  createTrainState,
  stateInitAt,
} from "../../src/train/trainer.ts";
import { CliError } from "../args.ts";
import { type ProgressBar, formatCount, formatDuration } from "../progress.ts";
import { type LoadedData, loadData } from "./data.ts";
import {
  type DataSource,
  type TrainSettings,
  DEFAULT_BUDGET_SECONDS,
  autoBlockSize,
  autoModelConfig,
  resolveConfig,
  splitSettings,
} from "./settings.ts";

/** A run ready to train: its state, recipe and data, and the time spent and still allowed. */
export interface PreparedRun {
  state: TrainState;
  recipe: Recipe;
  source: DataSource;
  data: LoadedData;
  /** Training seconds of the earlier invocations of this run (0 for a new one). */
  elapsedBefore: number;
  /** Training seconds this invocation may take (null: no limit). */
  budget: number | null;
  /** Steps the run takes even past the budget (0: none). */
  minSteps: number;
}

/** A new run in `dir`: the model sized to the data and budget unless the settings say otherwise. */
export function startRun(s: TrainSettings, dir: string, ui: ProgressBar): PreparedRun {
  checkOutDir(dir);
  const { model: modelSettings, recipe: recipeSettings } = splitSettings(
    s.overrides,
    s.overrideSource,
  );
  let recipe: Recipe = { ...defaultRecipe, ...recipeSettings };
  validateRecipe(recipe, s.overrideSource);
  const budget =
    s.timeBudgetSeconds === null && s.maxSteps === null
      ? DEFAULT_BUDGET_SECONDS
      : s.timeBudgetSeconds;
  const blockSize = typeof modelSettings.block_size === "number" ? modelSettings.block_size : null;
  const data = loadData(s.source, null, blockSize);
  const base = autoModelConfig(budget, data.tokenizer.vocabSize, data.longest);
  const abacus = chooseAbacus(data, modelSettings);
  const withAbacus = withAbacusChoice(modelSettings, abacus);
  const withDigits = abacusDigits(withAbacus, data.tokenizer, s.overrideSource);
  const resolved = resolveConfig(base, withDigits, s.overrideSource);
  const depth = "depthPerDifficulty" in recipeSettings ? null : chooseDepth(resolved, recipe, data);
  if (depth !== null) recipe = { ...recipe, depthPerDifficulty: depth.depthPerDifficulty };
  const window = "attention_window" in modelSettings ? null : chooseWindow(resolved, recipe, data);
  const config = withWindow(resolved, window, "block_size" in modelSettings, data.longest);
  checkFits(config, data);
  const workers = recipe.workers === 0 ? autoWorkers(recipe.batchSize) : null;
  if (workers !== null) recipe = { ...recipe, workers };
  const model = initModel(config, new Rng(s.seed));
  const minSteps = s.minSteps ?? 0;
  const fitted =
    s.maxSteps ??
    estimateSteps(model, recipe, data.train, s.seed, budget ?? DEFAULT_BUDGET_SECONDS);
  const totalSteps = s.maxSteps ?? Math.max(fitted, minSteps);
  const state = createTrainState(model, recipe, s.seed, totalSteps);
  describeRun(ui, model.config, recipe, totalSteps, s.maxSteps === null ? budget : null);
  if (totalSteps > fitted) {
    ui.log(
      `schedule: ${totalSteps} steps, the --min-steps floor: they may take longer than the ` +
        `budget (${fitted} fit it by a start-up estimate)`,
    );
  }
  if (abacus !== null) describeAbacus(ui, abacus, model.config);
  if (depth !== null) describeDepth(ui, depth);
  if (window !== null) describeWindow(ui, window);
  if (recipe.workers > 1) describeWorkers(ui, recipe, workers !== null);
  return { state, recipe, source: s.source, data, elapsedBefore: 0, budget, minSteps };
}

/** The run saved in `from`, which must be the output directory `dir` (checkpoints go back there). */
export function resumeRun(
  s: TrainSettings,
  from: string,
  dir: string,
  ui: ProgressBar,
): PreparedRun {
  recoverCheckpointDir(from);
  const ck = loadCheckpoint(from);
  if (resolve(from) !== dir)
    throw new CliError("loom train: --resume writes back to the same directory; drop --out");
  // runs saved before data parallelism ran on one thread: so does their rest
  const recipe: Recipe = { ...defaultRecipe, workers: 1, ...(ck.state.recipe as Partial<Recipe>) };
  const source = ck.state.data as DataSource;
  const tok = CharTokenizer.fromJSON(ck.tokenizer);
  const data = loadData(source, tok, ck.model.config.blockSize);
  const state: TrainState = {
    model: ck.model,
    opt: ck.opt,
    step: ck.state.step,
    totalSteps: s.maxSteps ?? ck.state.totalSteps,
    seed: ck.state.seed,
    tokens: ck.state.tokens,
  };
  const elapsedBefore = ck.state.elapsedSeconds;
  let budget = s.timeBudgetSeconds;
  // without a new --time-budget, what is left of the run's own
  if (budget === null && ck.state.timeBudgetSeconds !== null) {
    budget = Math.max(ck.state.timeBudgetSeconds - elapsedBefore, 0);
  }
  if (s.maxSteps !== null && s.maxSteps !== ck.state.totalSteps) {
    ui.log(`note: the LR schedule now spans ${s.maxSteps} steps (was ${ck.state.totalSteps})`);
  }
  ui.log(`resuming ${dir} at step ${state.step} of ${state.totalSteps}`);
  truncateMetrics(join(dir, "metrics.jsonl"), state.step);
  const minSteps = s.minSteps ?? ck.state.minSteps ?? 0;
  return { state, recipe, source, data, elapsedBefore, budget, minSteps };
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

/** The data must fit the model's context and vocabulary (a config or override may shrink them). */
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
    // activations go back to the pool, as in training: the first step fills it, the second is timed
    batchGradient(scratch, batch, {
      depth,
      supervisedDepths: recipe.supervisedDepths,
      init: stateInitAt(scratch, seed, 0),
    });
    perStep = (performance.now() - t) / 1000;
  }
  // ~12% of the time goes to evaluation and checkpoints; the optimizer update adds a little
  return Math.max(10, Math.floor((budget * 0.88) / (perStep * 1.05)));
}

/**
 * The iterations per difficulty level of a new run whose settings name none, when the data's
 * levels are long (see src/train/window.ts); null: the recipe's default.
 */
function chooseDepth(c: ModelConfig, recipe: Recipe, data: LoadedData): DepthChoice | null {
  if (data.train.kind === "text" || recipe.depthScheme !== "difficulty") return null;
  return suggestDepthPerDifficulty(data.trainExamples, c.nLayersInRecurrentBlock);
}

/**
 * The Abacus places and rotary positions for numbers (see src/train/numbers.ts); null for other
 * data, and where the settings turn the places off (`abacus_places` 0).
 */
function chooseAbacus(data: LoadedData, model: Record<string, unknown>): AbacusChoice | null {
  if (data.train.kind === "text" || model.abacus_places === 0) return null;
  return suggestAbacus(data.trainExamples);
}

/**
 * The settings with the chosen places and rotary positions, where they name none of their own.
 * Places that turn RoPE turn all of it; settings that ask for `rotary_positions` "index" (or
 * `rotary_pct` 0) get no rotary positions at all, the rule before session 23, unless they name
 * a `rotary_pct` too.
 */
function withAbacusChoice(
  model: Record<string, unknown>,
  choice: AbacusChoice | null,
): Record<string, unknown> {
  if (choice === null) return model;
  const chosen = model.rotary_pct === 0 ? "index" : choice.rotaryPositions;
  const positions = model.rotary_positions ?? chosen;
  return {
    abacus_places: choice.places,
    rotary_positions: positions,
    rotary_pct: positions === "place" ? 1 : 0,
    ...model,
  };
}

/** Settings asking for Abacus places get the tokenizer's digits, unless they name their own. */
function abacusDigits(
  model: Record<string, unknown>,
  tok: CharTokenizer,
  source: string,
): Record<string, unknown> {
  const places = model.abacus_places;
  if (typeof places !== "number" || places <= 0 || "abacus_digits" in model) return model;
  const digits = tok.digitIds();
  if (digits.length === 0) {
    throw new ConfigError(`${source}: abacus_places needs digits, and the data has none`);
  }
  return { ...model, abacus_digits: digits };
}

/** The attention window of a new run whose settings name none (see src/train/window.ts). */
function chooseWindow(c: ModelConfig, recipe: Recipe, data: LoadedData): WindowChoice {
  if (data.train.kind === "text") return { window: 0, reason: "plain text" };
  return suggestAttentionWindow(data.trainExamples, {
    coreLayers: c.nLayersInRecurrentBlock,
    depthPerDifficulty: recipe.depthScheme === "difficulty" ? recipe.depthPerDifficulty : null,
  });
}

/** `c` with the chosen window (null: the settings named one) and, unless set, its context. */
function withWindow(
  c: ModelConfig,
  choice: WindowChoice | null,
  blockSizeSet: boolean,
  longest: number,
): ModelConfig {
  const attentionWindow = choice?.window ?? c.attentionWindow;
  const blockSize = blockSizeSet ? c.blockSize : autoBlockSize(longest, attentionWindow);
  return { ...c, attentionWindow, blockSize };
}

function describeAbacus(ui: ProgressBar, choice: AbacusChoice, c: ModelConfig): void {
  const rotary =
    c.rotaryPositions === "place"
      ? ", rotary positions from the places"
      : c.rotaryPct === 0
        ? ", no rotary positions"
        : "";
  ui.log(
    `numbers: Abacus places ${c.abacusPlaces}${rotary} (${choice.reason}; --abacus_places 0 ` +
      "for none, --rotary_positions index for no rotary positions)",
  );
}

function describeDepth(ui: ProgressBar, choice: DepthChoice): void {
  ui.log(
    `depth: ${choice.depthPerDifficulty} iterations per difficulty level (${choice.reason}; ` +
      "--depthPerDifficulty 1 for one)",
  );
}

function describeWindow(ui: ProgressBar, choice: WindowChoice): void {
  ui.log(
    choice.window > 0
      ? `attention: a sliding window of ${choice.window} (${choice.reason}; --attention_window 0 for full attention)`
      : `attention: full (${choice.reason})`,
  );
}

function describeWorkers(ui: ProgressBar, recipe: Recipe, auto: boolean): void {
  const rows = Math.ceil(recipe.batchSize / recipe.workers);
  ui.log(
    `threads: ${recipe.workers}, each computing ${rows} of the batch's ${recipe.batchSize} ` +
      `examples (data parallel${auto ? ", one per core; --workers 1 for one" : ""})`,
  );
}

/** The model and recipe of a new run, in two lines; `fittedTo`: the budget the steps fit. */
function describeRun(
  ui: ProgressBar,
  c: ModelConfig,
  recipe: Recipe,
  totalSteps: number,
  fittedTo: number | null,
): void {
  const stats = modelStats(c, c.meanRecurrence, c.blockSize);
  const depth = recipe.depthScheme === "config" ? c.samplingScheme : recipe.depthScheme;
  ui.log(
    `model: width ${c.nEmbd}, ${c.nHeads} heads, prelude/core/coda ${c.nLayersInPrelude}/` +
      `${c.nLayersInRecurrentBlock}/${c.nLayersInCoda}, ${formatCount(stats.uniqueParams)} parameters, ` +
      `${c.injectionType} injection, state init ${c.stateInit}, context ${c.blockSize}` +
      describeExtensions(c),
  );
  ui.log(
    `recipe: depth ${depth} r̄=${c.meanRecurrence} k=${c.meanBackpropDepth}, loss at the last ` +
      `${recipe.supervisedDepths} depths; ${recipe.optimizer} lr ${recipe.lr} ${recipe.schedule}, ` +
      `batch ${recipe.batchSize}, clip ${recipe.gradClip}` +
      (recipe.curriculum > 0 ? `, curriculum over ${recipe.curriculum * 100}% of the run` : "") +
      `; ${totalSteps} steps` +
      (fittedTo !== null
        ? ` (a start-up estimate for the ${formatDuration(fittedTo)} budget, re-fitted to the measured speed at step 40)`
        : ""),
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
