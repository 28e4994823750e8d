/**
 * What a token's latent trajectory z_1 … z_N does at the end: the paper's categories (Sec. 7).
 * Everything is measured on the tail, the last ⌈N/2⌉ points (at least 4 when N allows), with
 * steps δ_j = z_j − z_{j−1}, relative steps ρ_j = ‖δ_j‖ / ‖z_j‖ and step scale d̄ = mean ‖δ_j‖.
 * The tests are applied in this order; the first that holds wins:
 *
 * 1. `fixed-point`: the last `fixedWindow` relative steps are all below `epsFixed`
 *    (the state no longer moves, to that tolerance).
 * 2. `slider`: steady drift along one direction. Successive steps point the same way
 *    (mean cos(δ_j, δ_{j+1}) > `sliderCos`), the tail is nearly straight
 *    (‖z_end − z_start‖ / Σ‖δ_j‖ > `sliderStraightness`) and the speed is steady
 *    (coefficient of variation of ‖δ_j‖ < `steadyCv`). Reported: the unit direction
 *    (z_end − z_start)/‖·‖, `speed` = d̄ and `relativeSpeed` = mean ρ_j.
 * 3. `orbit` with a period p > 1, found one of two ways:
 *    a. recurrence: the smallest lag p ≥ 2 with R(p) = mean ‖z_j − z_{j−p}‖ / d̄ < `recurrenceTol`
 *       (the state comes back to within a fraction of one step after p steps, seen at least twice
 *       in the tail): integer period;
 *    b. steady rotation (at least 5 steps in the tail): successive steps turn by a steady angle
 *       φ = acos(mean cos(δ_j, δ_{j+1})) (spread of the cosines < `steadyCosSpread`, speed
 *       CV < `steadyCv`) with period 2π/φ
 *       short enough to be seen in the tail, and the state returns closer than one step after
 *       round(2π/φ) steps (R < 1): fractional period, one decimal.
 * 4. `unconverged`: none of these (still moving, with no clear pattern in the window).
 *
 * Known limits: a slider slower than `epsFixed` per step counts as a fixed point; an orbit whose
 * period exceeds the tail, or one that turns by less than ~25° per step, is not recognised.
 */
import { cosine, distance, norm, relativeStep, sub, type Vec } from "./metrics.ts";

export type TokenClass = "fixed-point" | "orbit" | "slider" | "unconverged";

export const TOKEN_CLASSES: readonly TokenClass[] = [
  "fixed-point",
  "orbit",
  "slider",
  "unconverged",
];

export interface ClassifyOptions {
  epsFixed: number;
  fixedWindow: number;
  sliderCos: number;
  sliderStraightness: number;
  steadyCv: number;
  recurrenceTol: number;
  steadyCosSpread: number;
}

export const defaultClassifyOptions: ClassifyOptions = {
  epsFixed: 1e-2,
  fixedWindow: 3,
  sliderCos: 0.9,
  sliderStraightness: 0.9,
  steadyCv: 0.35,
  recurrenceTol: 0.3,
  steadyCosSpread: 0.2,
};

/** The measures the decision used, kept for the report. */
export interface TailMeasures {
  tail: number; // points in the tail
  lastRelativeStep: number | null; // ρ_N (null: fewer than 2 points; so below)
  meanTurnCos: number | null; // mean cos(δ_j, δ_{j+1})
  turnCosSpread: number | null; // standard deviation of those cosines
  straightness: number; // ‖z_end − z_start‖ / Σ‖δ_j‖
  speedCv: number; // std/mean of ‖δ_j‖
  bestRecurrence: number | null; // min over p ≥ 2 of R(p)
}

export interface Classification {
  class: TokenClass;
  period?: number; // orbit
  direction?: Float64Array; // slider: unit vector (C)
  speed?: number; // slider: mean ‖δ‖ per step
  relativeSpeed?: number; // slider: mean ‖δ‖ / ‖z‖ per step
  measures: TailMeasures;
}

/** Classify one token's trajectory `points` = z_1 … z_N (each C values). */
export function classifyTrajectory(
  points: readonly Vec[],
  options: Partial<ClassifyOptions> = {},
): Classification {
  const o = { ...defaultClassifyOptions, ...options };
  const N = points.length;
  const tailLen = Math.min(N, Math.max(4, Math.ceil(N / 2)));
  const tail = points.slice(N - tailLen);
  const deltas = tail.slice(1).map((z, j) => sub(z, tail[j]));
  const lens = deltas.map(norm);
  const rel = tail.slice(1).map((z, j) => relativeStep(tail[j], z));
  const m = measure(tail, deltas, lens, rel);
  const lastRel = rel.slice(-o.fixedWindow);
  if (lastRel.length > 0 && lastRel.every((r) => r < o.epsFixed)) {
    return { class: "fixed-point", measures: m };
  }
  if (deltas.length < 3) return { class: "unconverged", measures: m };
  const steady = m.speedCv < o.steadyCv;
  const turnCos = m.meanTurnCos ?? NaN;
  if (steady && turnCos > o.sliderCos && m.straightness > o.sliderStraightness) {
    const dir = sub(tail[tail.length - 1], tail[0]);
    const n = norm(dir);
    for (let c = 0; c < dir.length; c++) dir[c] /= n;
    return {
      class: "slider",
      direction: dir,
      speed: mean(lens),
      relativeSpeed: mean(rel),
      measures: m,
    };
  }
  const scale = mean(lens);
  const exact = recurrencePeriod(tail, scale, o.recurrenceTol);
  if (exact !== null) return { class: "orbit", period: exact, measures: m };
  const enough = deltas.length >= 5; // a steady turn needs a few turns to be called steady
  if (enough && steady && (m.turnCosSpread ?? NaN) < o.steadyCosSpread && turnCos < o.sliderCos) {
    const period = (2 * Math.PI) / Math.acos(Math.max(-1, turnCos));
    const p = Math.round(period);
    if (p >= 2 && p < tail.length && recurrence(tail, p, scale) < 1) {
      return { class: "orbit", period: Math.round(period * 10) / 10, measures: m };
    }
  }
  return { class: "unconverged", measures: m };
}

function measure(
  tail: readonly Vec[],
  deltas: Float64Array[],
  lens: number[],
  rel: number[],
): TailMeasures {
  const turns = deltas.slice(1).map((d, j) => cosine(deltas[j], d));
  const path = lens.reduce((a, b) => a + b, 0);
  const scale = mean(lens);
  let best = Infinity;
  for (let p = 2; p < tail.length; p++) best = Math.min(best, recurrence(tail, p, scale));
  const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);
  return {
    tail: tail.length,
    lastRelativeStep: rel.length > 0 ? finite(rel[rel.length - 1]) : null,
    meanTurnCos: finite(mean(turns)),
    turnCosSpread: finite(std(turns)),
    straightness: path > 0 ? distance(tail[tail.length - 1], tail[0]) / path : 0,
    speedCv: scale > 0 ? std(lens) / scale : 0,
    bestRecurrence: finite(best),
  };
}

/** R(p) = mean_j ‖z_j − z_{j−p}‖ / scale over the tail. */
function recurrence(tail: readonly Vec[], p: number, scale: number): number {
  let s = 0;
  for (let j = p; j < tail.length; j++) s += distance(tail[j], tail[j - p]);
  return scale > 0 ? s / (tail.length - p) / scale : Infinity;
}

function recurrencePeriod(tail: readonly Vec[], scale: number, tol: number): number | null {
  for (let p = 2; p + 2 <= tail.length; p++) if (recurrence(tail, p, scale) < tol) return p;
  return null;
}

function mean(xs: readonly number[]): number {
  return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function std(xs: readonly number[]): number {
  const m = mean(xs);
  return xs.length > 0 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length) : NaN;
}
