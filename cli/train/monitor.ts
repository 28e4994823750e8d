// What a run does after each optimizer step: a metrics line, the progress bar, a periodic
// held-out evaluation, a checkpoint every so often, and (budget-fitted runs) re-fitting the
// schedule's length to the measured speed.
import { appendFileSync } from "node:fs";
import { fitTotalSteps, stepCost } from "../../src/train/budget.ts";
import type { Evaluator } from "../../src/train/evaluate.ts";
import type { Recipe } from "../../src/train/recipe.ts";
import type { StepMetrics, TrainState } from "../../src/train/trainer.ts";
import { type ProgressBar, formatCount, formatDuration } from "../progress.ts";
import type { LoadedData } from "./data.ts";

export interface MonitorOptions {
  /** The state the loop advances (the one its hooks are handed). */
  state: TrainState;
  recipe: Recipe;
  data: LoadedData;
  ui: ProgressBar;
  metricsPath: string;
  /** When this invocation started training (Date.now()). */
  t0: number;
  /** Training seconds of earlier invocations, added to the metrics' timestamps. */
  elapsedBefore: number;
  /** Training seconds this invocation may take (null: no limit). */
  budget: number | null;
  /** Steps the run takes even past the budget (0: none). */
  minSteps: number;
  /** Re-fit the number of steps to the budget at the measured speed. */
  refit: boolean;
  /** Evaluate every this many steps; 0: about 8 times a run. */
  evalEvery: number;
  /** How the periodic evaluation runs: `evaluate`, or on a data-parallel run's threads. */
  evaluate: Evaluator;
  checkpointEverySeconds: number;
  save: (finished: boolean) => void;
}

export class RunMonitor {
  /** Final-depth loss of the latest step (NaN before the first). */
  lastLoss = Number.NaN;
  private readonly o: MonitorOptions;
  private readonly startStep: number;
  /** The depths of the periodic evaluation: 1, r̄ and 2r̄. */
  private readonly evalSteps: number[];
  private evalEvery: number;
  private tokensThisRun = 0;
  private lastSave = Date.now();
  /** Where the speed is measured from: seconds and `stepCost` units done by then. */
  private refitFrom: { secs: number; units: number } | null = null;
  private units = 0;
  /** Seconds into this invocation at which the latest re-fit plans the run to end. */
  private plannedEnd: number | null = null;

  constructor(o: MonitorOptions) {
    this.o = o;
    this.startStep = o.state.step;
    this.evalEvery = o.evalEvery > 0 ? o.evalEvery : this.autoEvery();
    const r = o.state.model.config.meanRecurrence;
    this.evalSteps = [...new Set([1, r, 2 * r])];
  }

  async onStep(m: StepMetrics, st: TrainState): Promise<void> {
    this.lastLoss = m.loss;
    this.tokensThisRun += m.inputTokens;
    this.units += stepCost(m.inputTokens, m);
    const secs = (Date.now() - this.o.t0) / 1000;
    if (st.step - this.startStep === 10) this.refitFrom = { secs, units: this.units };
    if (st.step - this.startStep === 40) this.refitSteps(secs);
    appendFileSync(
      this.o.metricsPath,
      `${JSON.stringify({ type: "step", ...m, seconds: round(this.o.elapsedBefore + secs) })}\n`,
    );
    this.showProgress(m, st, secs);
    if (
      this.o.data.evalExamples.length > 0 &&
      (st.step % this.evalEvery === 0 || st.step === st.totalSteps)
    ) {
      await this.evaluateHeldOut(st);
    }
    if ((Date.now() - this.lastSave) / 1000 >= this.o.checkpointEverySeconds) {
      this.o.save(false);
      this.lastSave = Date.now();
    }
  }

  private autoEvery(): number {
    return Math.max(Math.ceil(this.o.state.totalSteps / 8), 1);
  }

  private showProgress(m: StepMetrics, st: TrainState, secs: number): void {
    // a run held to its --min-steps goes past the budget
    const budget = st.totalSteps > this.o.minSteps ? this.o.budget : null;
    const stepsLeft = st.totalSteps - st.step;
    const perStep = secs / Math.max(st.step - this.startStep, 1);
    // steps get dearer as a curriculum goes on: a re-fitted run's end is the better guess
    const planned = this.plannedEnd === null ? stepsLeft * perStep : this.plannedEnd - secs;
    const eta = Math.max(0, Math.min(planned, budget === null ? Infinity : budget - secs));
    const frac = Math.max(st.step / st.totalSteps, budget === null ? 0 : secs / budget);
    this.o.ui.update(
      frac,
      `step ${st.step}/${st.totalSteps} loss ${m.loss.toFixed(4)} r=${m.noGradSteps + m.gradSteps} ` +
        `${formatCount(this.tokensThisRun / Math.max(secs, 1e-3))} tok/s ETA ${formatDuration(eta)}`,
    );
  }

  private async evaluateHeldOut(st: TrainState): Promise<void> {
    const { data } = this.o;
    const all = await this.o.evaluate(st.model, data.tokenizer, data.evalExamples.slice(0, 100), {
      steps: this.evalSteps,
      seed: 1,
    });
    const rows = all.filter((row) => row.difficulty === null);
    appendFileSync(
      this.o.metricsPath,
      `${JSON.stringify({ type: "eval", step: st.step, results: rows })}\n`,
    );
    this.refitSteps((Date.now() - this.o.t0) / 1000);
    this.o.ui.log(
      `step ${st.step}: held-out accuracy ${rows.map((x) => `r=${x.steps} ${(100 * x.accuracy).toFixed(0)}%`).join(", ")}`,
    );
  }

  /**
   * A budget-fitted schedule is re-fitted to the measured speed: the start-up estimate times a
   * cold JIT on one batch, so it can be off by 2x. Speed is measured per unit of work
   * (`stepCost`) since the last re-fit and the remaining steps are priced from their own
   * schedule: a curriculum's cheap first stage does not stretch the run past its budget.
   * The first re-fit is at step 40 of this invocation, on the speed since step 10.
   */
  private refitSteps(secs: number): void {
    const { budget, state } = this.o;
    if (!this.o.refit || budget === null || this.refitFrom === null) return;
    const perUnit = (secs - this.refitFrom.secs) / Math.max(this.units - this.refitFrom.units, 1);
    this.refitFrom = { secs, units: this.units };
    this.plannedEnd = budget * 0.95;
    const left = this.plannedEnd - secs;
    const fitted = fitTotalSteps(state, this.o.recipe, this.o.data.train, left, perUnit);
    const total = Math.max(fitted, this.o.minSteps);
    if (total === this.o.minSteps) this.plannedEnd = null;
    if (Math.abs(total - state.totalSteps) <= 0.05 * state.totalSteps) return;
    const first = state.step - this.startStep <= 40;
    if (first) this.o.ui.log(`schedule: ${describeRefit(total, fitted, state.totalSteps)}`);
    state.totalSteps = total;
    // the evaluation cadence follows the first re-fit only (a moving one would re-trigger)
    if (first && this.o.evalEvery <= 0) this.evalEvery = this.autoEvery();
  }
}

function describeRefit(total: number, fitted: number, was: number): string {
  if (total === fitted) return `${total} steps at the measured speed (was ${was})`;
  return (
    `${total} steps, the --min-steps floor, past the time budget (${fitted} fit it at the ` +
    `measured speed)`
  );
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
