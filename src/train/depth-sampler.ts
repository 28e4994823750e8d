/**
 * Recurrence-depth sampling for training (reference §3.2-3.3): each optimizer step draws how many
 * times the recurrent core runs, split into `noGradSteps` (run without a graph) followed by
 * `gradSteps` (the last iterations, which are backpropagated through: truncated backprop).
 */
import { Rng } from "../tensor/random.ts";

/**
 * - `poisson-lognormal-filling`: Huginn's heavy-tailed sampler (Poisson rate drawn log-normally).
 * - `fixed`: always `meanRecurrence` iterations, the last `meanBackpropDepth` with gradient.
 */
export type DepthScheme = "poisson-lognormal-filling" | "fixed";

export interface DepthConfig {
  meanRecurrence: number; // r̄, 32 for Huginn-0125
  meanBackpropDepth: number; // k̄, 8 for Huginn-0125
}

/** One step's recurrence: `noGradSteps + gradSteps` core iterations in total. */
export interface DepthDraw {
  noGradSteps: number;
  gradSteps: number;
}

/** σ of the log-normal Poisson rate, as in the reference. */
const LOGNORMAL_SIGMA = 0.5;

/** Multiplier that spreads seeds apart in `depthForStep` (a prime). */
const SEED_STRIDE = 1_000_003;

/**
 * Draw the recurrence for one training step.
 *
 * poisson-lognormal-filling (r̄ = meanRecurrence, k̄ = meanBackpropDepth):
 *   t = r̄ − k̄, σ = 0.5, μ = log(t + k̄) − σ²/2, τ ~ N(μ, σ²), p = Poisson(exp(τ)) + 1,
 *   n = max(p − k̄, 0), k = min(k̄, p)      (E[exp(τ)] = r̄, so E[p] = r̄ + 1)
 * fixed:
 *   n = max(r̄ − k̄, 0), k = min(k̄, r̄)
 *
 * `rng` is consumed only by the random scheme (one normal, then one Poisson draw).
 */
export function sampleDepth(scheme: DepthScheme, cfg: DepthConfig, rng: Rng): DepthDraw {
  validate(cfg);
  const { meanRecurrence: rBar, meanBackpropDepth: kBar } = cfg;
  switch (scheme) {
    case "poisson-lognormal-filling":
      return split(samplePoissonLogNormal(rBar, kBar, rng), kBar);
    case "fixed":
      return split(rBar, kBar);
    default:
      throw new Error(`sampleDepth: unknown scheme ${String(scheme satisfies never)}`);
  }
}

/**
 * The depth for training step `step` of a run seeded with `seed`, from a fresh generator
 * `new Rng((seed · 1_000_003 + step) mod 2³²)`. It depends on nothing but (seed, step), so a
 * resumed run draws exactly the depths the uninterrupted run would have drawn.
 */
export function depthForStep(
  scheme: DepthScheme,
  cfg: DepthConfig,
  seed: number,
  step: number,
): DepthDraw {
  const mixed = seed * SEED_STRIDE + step;
  if (!Number.isSafeInteger(mixed) || seed < 0 || step < 0) {
    throw new Error(
      `depthForStep: seed ${seed} and step ${step} must be small non-negative integers`,
    );
  }
  return sampleDepth(scheme, cfg, new Rng(mixed % 2 ** 32));
}

/** p = Poisson(exp(τ)) + 1 with τ ~ N(log(t + k̄) − σ²/2, σ²), t = r̄ − k̄. */
function samplePoissonLogNormal(rBar: number, kBar: number, rng: Rng): number {
  const t = rBar - kBar;
  const mu = Math.log(t + kBar) - (LOGNORMAL_SIGMA * LOGNORMAL_SIGMA) / 2;
  const rate = rng.logNormal(mu, LOGNORMAL_SIGMA);
  return rng.poisson(rate) + 1;
}

/** Split p iterations: the last min(k̄, p) with gradient, the rest without. */
function split(total: number, kBar: number): DepthDraw {
  return { noGradSteps: Math.max(total - kBar, 0), gradSteps: Math.min(kBar, total) };
}

function validate(cfg: DepthConfig): void {
  const { meanRecurrence: rBar, meanBackpropDepth: kBar } = cfg;
  if (!Number.isInteger(rBar) || rBar < 1 || !Number.isInteger(kBar) || kBar < 0) {
    throw new Error(
      `depth sampler: meanRecurrence (${rBar}) must be an integer >= 1 and ` +
        `meanBackpropDepth (${kBar}) an integer >= 0`,
    );
  }
}
