/**
 * Learning-rate schedules, nanoGPT-style: a pure function of the step, so resuming needs no state.
 * Huginn-0125 used warm-up + constant ("trapezoid" whose cooldown was never reached, §3.5).
 */

/**
 * - `warmup-cosine`: linear warm-up, cosine decay to `minLr` at `totalSteps`, then `minLr`.
 * - `warmup-constant-cooldown`: linear warm-up, `maxLr`, linear cooldown to `minLr` over the
 *   last `cooldownSteps` before `totalSteps` (the reference's "trapezoid"), then `minLr`.
 */
export type ScheduleName = "warmup-cosine" | "warmup-constant-cooldown";

export interface ScheduleConfig {
  maxLr: number; // peak learning rate, reached at the end of warm-up
  minLr: number; // floor, reached at totalSteps
  warmupSteps: number;
  totalSteps: number;
  cooldownSteps: number; // only used by warmup-constant-cooldown
}

/**
 * Learning rate for 0-based optimizer step `step`:
 *   1) warm-up, step < W:             maxLr · (step + 1) / (W + 1)
 *   2) after the end, step ≥ T:       minLr
 *   3a) warmup-cosine:                minLr + ½(1 + cos(π·(step − W)/(T − W)))·(maxLr − minLr)
 *   3b) warmup-constant-cooldown:     maxLr while step < T − C, then
 *                                     maxLr + (minLr − maxLr)·(step − (T − C))/C
 * with W = warmupSteps, T = totalSteps, C = cooldownSteps.
 */
export function learningRate(schedule: ScheduleName, step: number, cfg: ScheduleConfig): number {
  validate(schedule, cfg);
  const { maxLr, minLr, warmupSteps, totalSteps } = cfg;
  // 1) linear warm-up (never exactly 0, so the first step already moves the weights)
  if (step < warmupSteps) return (maxLr * (step + 1)) / (warmupSteps + 1);
  // 2) past the end of the schedule: hold the floor
  if (step >= totalSteps) return minLr;
  // 3) the schedule's own shape in between
  switch (schedule) {
    case "warmup-cosine":
      return cosineDecay(step, cfg);
    case "warmup-constant-cooldown":
      return constantThenCooldown(step, cfg);
    default:
      throw new Error(`learningRate: unknown schedule ${String(schedule satisfies never)}`);
  }
}

/** minLr + ½(1 + cos(π·ratio))·(maxLr − minLr), ratio = (step − W)/(T − W) ∈ [0, 1). */
function cosineDecay(step: number, cfg: ScheduleConfig): number {
  const ratio = (step - cfg.warmupSteps) / (cfg.totalSteps - cfg.warmupSteps);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return cfg.minLr + coeff * (cfg.maxLr - cfg.minLr);
}

/** maxLr until T − C, then a straight line to minLr at T. */
function constantThenCooldown(step: number, cfg: ScheduleConfig): number {
  const cooldownStart = cfg.totalSteps - cfg.cooldownSteps;
  if (step < cooldownStart) return cfg.maxLr;
  const ratio = (step - cooldownStart) / cfg.cooldownSteps;
  return cfg.maxLr + (cfg.minLr - cfg.maxLr) * ratio;
}

function validate(schedule: ScheduleName, cfg: ScheduleConfig): void {
  const { maxLr, minLr, warmupSteps, totalSteps, cooldownSteps } = cfg;
  const steps = [warmupSteps, totalSteps, cooldownSteps];
  if (!steps.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new Error(
      "learningRate: warmupSteps, totalSteps and cooldownSteps must be integers >= 0",
    );
  }
  if (!(minLr >= 0 && maxLr >= minLr)) {
    throw new Error(`learningRate: need 0 <= minLr (${minLr}) <= maxLr (${maxLr})`);
  }
  const used = warmupSteps + (schedule === "warmup-constant-cooldown" ? cooldownSteps : 0);
  if (used > totalSteps) {
    throw new Error(
      `learningRate: warm-up and cooldown (${used} steps) exceed totalSteps ${totalSteps}`,
    );
  }
}
