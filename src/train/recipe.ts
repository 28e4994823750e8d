/**
 * The training recipe: every knob of `loom train` that is not part of the model's config.json,
 * with defaults chosen for small models on a CPU budget, and the depth schedule per step.
 *
 * Why the defaults (bench/recipe-notes.md has the measurements behind them, E1-E13, P1-P6, the
 * session-3 sweep X-A..X-W and S6):
 * - Small models stall first on the task, not the loop: on 1-hop pointer-chasing a plain
 *   PyTorch GPT sits on the "one of the two digits" plateau as long as loom does.
 * - Depth follows difficulty (`depthScheme` "difficulty", c = `depthPerDifficulty` 1): a batch
 *   of one level d runs ⌈c·d⌉ to 2⌈c·d⌉ + 1 iterations, one iteration per move / bit / hop
 *   (Fan et al.'s length-dependent loop count, widened against overthinking); data without
 *   difficulties falls back to "uniform" (total depth ~ U[1, 2r̄ − 1], DT's progressive loss).
 *   On swaps c = 1 learned where c = 0.5 stayed at chance (S3 vs S4). Huginn's
 *   poisson-lognormal-filling and fixed remain available. Data whose levels are long (more
 *   than two characters per core block: pointer-chasing's hop compares two of 26 letters)
 *   gets c = 2 and a wider window from the trainer (window.ts), which chains hops where c = 1
 *   did not (PCW7C2; reachability, the same scan on a graph: RB0).
 * - Supervision at every gradient iteration (`supervisedDepths` 4 = k): extra iterations must not
 *   destroy the answer (TRM/HRM deep supervision); no overthinking up to r = 32.
 * - lr 2e-3, batch 64, clip 1, a difficulty curriculum over 80% of the run: P3 at 5e-3 diverged
 *   once deep levels came in. In a 4-7 minute sweep on swaps, lr 3e-3, batch 32, no curriculum,
 *   c = 2 and width 96 each stayed near chance, like the baseline with a random s_0.
 * - Additive injection with a zero initial state (model config, `autoModelConfig` in
 *   cli/train/settings.ts): s + e has spectral radius 1 in the state (Parcae), and a
 *   deterministic s_0 (as in DT and TRM) is what made swaps learnable in minutes (X-E: 72%
 *   held-out after 7 minutes, where the random like-init state was at 22%).
 * - Beyond the trained lengths, the model config matters more than the recipe: with a sliding
 *   attention window (`attention_window`, which the trainer picks for data that reads as a
 *   scan: window.ts; parity gets 2, swaps 3), a looped model trained on parity of 4-10 bits for
 *   10 minutes is right on 48 bits at r >= 32, one trained on 1-12 swaps for 30 minutes on 24
 *   swaps, one trained on grid walks of 1-12 moves on 48 moves (session 6); with full attention
 *   parity reaches 16 bits and swaps and the grid stop short of twice the trained length. On
 *   swaps with full attention a looped model trained at a fixed r = 12 reaches further than the
 *   difficulty-tied depth (S6-fixed vs S6); both beat the same model without the loop (S6-r1).
 */
import { type DepthDraw, type DepthScheme, depthForStep } from "./depth-sampler.ts";
import type { OptimizerName } from "./optim.ts";
import type { ScheduleName } from "./schedule.ts";
import { Rng } from "../tensor/random.ts";

/**
 * Depth schemes of the trainer: the shared sampler's, plus "uniform" and "difficulty" (see
 * `drawDepth`).
 */
export type TrainDepthScheme = DepthScheme | "uniform" | "difficulty";

export interface Recipe {
  /** Examples (or text windows) per optimizer step. */
  batchSize: number;
  optimizer: OptimizerName;
  lr: number; // peak learning rate
  minLrRatio: number; // floor of the schedule as a fraction of lr
  schedule: ScheduleName;
  warmupSteps: number; // 0 = auto: 5% of the run, at most 200
  cooldownFraction: number; // warmup-constant-cooldown: the last fraction of the run
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  gradClip: number; // max global gradient norm; 0 = off
  /**
   * How the depth of each step is drawn. "config" = the model config's sampling_scheme
   * (poisson-lognormal-filling or fixed), mean_recurrence r̄ and mean_backprop_depth k.
   */
  depthScheme: TrainDepthScheme | "config";
  /**
   * "difficulty" scheme: core iterations granted per difficulty level (hops, bits, ...): a step
   * at level d runs between ⌈c·d⌉ and 2⌈c·d⌉ + 1 iterations.
   */
  depthPerDifficulty: number;
  /**
   * How many of the last gradient iterations get a loss (averaged): 1 = final depth only (the
   * reference), k = every iteration with gradient (deep supervision). Clamped to the k drawn.
   */
  supervisedDepths: number;
  /** Text training only: tokens per window (0 = the model's block_size). */
  seqLen: number;
  /**
   * Difficulty curriculum over the first `curriculum` fraction of the run (0 = off): examples
   * with known difficulties are unlocked easiest first, in equal stages; afterwards the full mix.
   */
  curriculum: number;
  /**
   * Threads computing each step, each on a slice of the batch (data parallel; the same gradient
   * as one thread up to float rounding): 0 = as many as the cores loom may use, at most one per
   * 8 examples of the batch. A run keeps the count it started with, so a resumed run repeats it.
   */
  workers: number;
}

export const defaultRecipe: Recipe = {
  batchSize: 64,
  optimizer: "adamw",
  lr: 2e-3,
  minLrRatio: 0.1,
  schedule: "warmup-cosine",
  warmupSteps: 0,
  cooldownFraction: 0.2,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  gradClip: 1,
  depthScheme: "difficulty",
  depthPerDifficulty: 1,
  supervisedDepths: 4,
  seqLen: 0,
  curriculum: 0.8,
  workers: 0,
};

/** The warm-up steps actually used for a run of `totalSteps`. */
export function warmupSteps(recipe: Recipe, totalSteps: number): number {
  if (recipe.warmupSteps > 0) return Math.min(recipe.warmupSteps, Math.max(totalSteps - 1, 0));
  return Math.min(200, Math.floor(totalSteps * 0.05));
}

const UNIFORM_SALT = 0x2545f491;

/**
 * The depth of optimizer step `step` of a run seeded `seed`: a pure function of (seed, step), so
 * a resumed run draws what the uninterrupted one would have.
 * - poisson-lognormal-filling / fixed: the shared sampler (depth-sampler.ts) with r̄, k.
 * - uniform: total p ~ U{1, …, 2r̄ − 1} (mean r̄), the last min(k, p) with gradient.
 * - difficulty: the step's batch is all of one level d (`level`, chosen by the trainer); with
 *   base = max(1, ⌈c·d⌉), c = `perDifficulty`, total p ~ U{base, …, 2·base + 1}: at least the
 *   depth the level needs, and up to twice that, so extra iterations must keep the answer
 *   (Fan et al.'s length-dependent loop count, widened against overthinking). Without a level
 *   (data without difficulties) it falls back to uniform.
 */
export function drawDepth(
  scheme: TrainDepthScheme,
  meanRecurrence: number,
  backpropDepth: number,
  seed: number,
  step: number,
  level?: { difficulty: number; perDifficulty: number },
): DepthDraw {
  const cfg = { meanRecurrence, meanBackpropDepth: backpropDepth };
  if (scheme !== "uniform" && scheme !== "difficulty") {
    return depthForStep(scheme, cfg, seed, step);
  }
  const rng = new Rng((Math.imul(seed ^ UNIFORM_SALT, 0x9e3779b1) + step) >>> 0);
  let total: number;
  if (scheme === "difficulty" && level !== undefined) {
    const base = Math.max(1, Math.ceil(level.perDifficulty * level.difficulty));
    total = base + rng.int(base + 2);
  } else {
    total = 1 + rng.int(2 * meanRecurrence - 1);
  }
  const k = Math.min(backpropDepth, total);
  return { noGradSteps: total - k, gradSteps: k };
}

/** Recipe field names, for overrides and config files. */
export const RECIPE_KEYS = Object.keys(defaultRecipe) as (keyof Recipe)[];

/** Checks every field; throws naming the first bad one. */
export function validateRecipe(r: Recipe, source = "recipe"): void {
  const bad = (field: string, why: string): never => {
    throw new RecipeError(`${source}: field "${field}" ${why}`);
  };
  const posInt = (field: keyof Recipe) => {
    const v = r[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      bad(field, `must be a positive integer, got ${String(v)}`);
  };
  posInt("batchSize");
  posInt("supervisedDepths");
  if (!(r.lr > 0)) bad("lr", `must be > 0, got ${r.lr}`);
  if (!(r.minLrRatio >= 0 && r.minLrRatio <= 1)) bad("minLrRatio", "must be in [0, 1]");
  if (!(r.cooldownFraction >= 0 && r.cooldownFraction < 1))
    bad("cooldownFraction", "must be in [0, 1)");
  if (!(r.weightDecay >= 0)) bad("weightDecay", "must be >= 0");
  if (!(r.beta1 >= 0 && r.beta1 < 1)) bad("beta1", "must be in [0, 1)");
  if (!(r.beta2 >= 0 && r.beta2 < 1)) bad("beta2", "must be in [0, 1)");
  if (!(r.eps >= 0)) bad("eps", "must be >= 0");
  if (!(r.gradClip >= 0)) bad("gradClip", "must be >= 0");
  if (!Number.isInteger(r.warmupSteps) || r.warmupSteps < 0)
    bad("warmupSteps", "must be an integer >= 0");
  if (!Number.isInteger(r.seqLen) || r.seqLen < 0) bad("seqLen", "must be an integer >= 0");
  if (!(r.curriculum >= 0 && r.curriculum <= 1)) bad("curriculum", "must be in [0, 1]");
  if (!Number.isInteger(r.workers) || r.workers < 0)
    bad("workers", `must be an integer >= 0 (0 = one per core), got ${String(r.workers)}`);
  if (!(r.depthPerDifficulty > 0)) bad("depthPerDifficulty", "must be > 0");
  if (!["adamw", "adam-atan2"].includes(r.optimizer))
    bad("optimizer", `must be adamw or adam-atan2, got ${JSON.stringify(r.optimizer)}`);
  if (!["warmup-cosine", "warmup-constant-cooldown"].includes(r.schedule))
    bad("schedule", "must be warmup-cosine or warmup-constant-cooldown");
  if (
    !["config", "uniform", "difficulty", "fixed", "poisson-lognormal-filling"].includes(
      r.depthScheme,
    )
  )
    bad("depthScheme", "must be config, uniform, difficulty, fixed or poisson-lognormal-filling");
}

/** A recipe field that cannot be used; the message names it. */
export class RecipeError extends Error {
  override name = "ConfigError";
}
