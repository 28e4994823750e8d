/**
 * Fitting a run's length to a time budget. Steps differ in cost (a curriculum starts on short
 * examples, the "difficulty" depth scheme runs hard levels deeper), so the trainer's speed is
 * measured per unit of work, not per step, and the remaining steps are priced from the schedule
 * they will actually follow.
 */
import type { DepthDraw } from "./depth-sampler.ts";
import type { Recipe } from "./recipe.ts";
import { type TrainData, type TrainState, planStep } from "./trainer.ts";

/**
 * Relative work of one optimizer step: positions × (no-grad iterations + 3 per gradient
 * iteration, forward and backward, + 4 for the prelude and coda, both ways).
 */
export function stepCost(inputTokens: number, depth: DepthDraw): number {
  return inputTokens * (depth.noGradSteps + 3 * depth.gradSteps + 4);
}

/** Mean `stepCost` of steps [from, to) of a run of `to` steps, from up to `samples` of them. */
export function meanPlannedCost(
  state: TrainState,
  recipe: Recipe,
  data: TrainData,
  from: number,
  to: number,
  samples = 32,
): number {
  const n = Math.max(1, Math.min(samples, to - from));
  let total = 0;
  for (let i = 0; i < n; i++) {
    const step = from + Math.floor(((i + 0.5) * Math.max(to - from, 1)) / n);
    const { depth, batch } = planStep(state.model, recipe, data, state.seed, step, to);
    total += stepCost(batch.batch * batch.seqLen, depth);
  }
  return total / n;
}

/**
 * The run length that spends `secondsLeft` from step `state.step` at `secondsPerUnit` of
 * `stepCost`. The schedule of the later steps depends on the length (the curriculum is laid out
 * over it), so the length is found by bisection on the planned cost of [step, length).
 */
export function fitTotalSteps(
  state: TrainState,
  recipe: Recipe,
  data: TrainData,
  secondsLeft: number,
  secondsPerUnit: number,
): number {
  const from = state.step;
  const seconds = (to: number): number =>
    (to - from) * secondsPerUnit * meanPlannedCost(state, recipe, data, from, to);
  let lo = from + 1; // fits (or nothing does)
  let hi = Math.max(2 * state.totalSteps, from + 2);
  while (seconds(hi) < secondsLeft && hi < 1e9) hi *= 2;
  while (hi - lo > Math.max(1, 0.01 * lo)) {
    const mid = Math.floor((lo + hi) / 2);
    if (seconds(mid) <= secondsLeft) lo = mid;
    else hi = mid;
  }
  return lo;
}
