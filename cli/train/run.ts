// One `loom train` invocation: prepare the run (new or resumed), train until the last step, the
// time budget, --stop-after or Ctrl-C, and leave a checkpoint that --resume continues from.
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Example } from "../../src/data/example.ts";
import { formatExamplesJsonl } from "../../src/data/jsonl.ts";
import type { CharTokenizer } from "../../src/data/tokenizer.ts";
import type { RavenModel } from "../../src/model/model.ts";
import { saveCheckpoint, type TrainerStateJson } from "../../src/node/checkpoint-io.ts";
import { startGradientWorkers } from "../../src/node/data-parallel.ts";
import { evaluate } from "../../src/train/evaluate.ts";
import { trainLoop } from "../../src/train/trainer.ts";
import { ProgressBar } from "../progress.ts";
import { RunMonitor } from "./monitor.ts";
import { type PreparedRun, resumeRun, startRun } from "./prepare.ts";
import type { TrainSettings } from "./settings.ts";

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

/** A run from start or from a checkpoint; the demo calls this too. */
export async function runTraining(
  s: TrainSettings,
  ui: ProgressBar = new ProgressBar({ quiet: s.quiet }),
): Promise<TrainResult> {
  const dir = resolve(s.out);
  // 1. the state to train from: a saved run's, or a new model sized to the data and budget
  const run = s.resume !== undefined ? resumeRun(s, s.resume, dir, ui) : startRun(s, dir, ui);
  const { state, data, budget } = run;
  const t0 = Date.now();
  const save = checkpointer(dir, run, t0);
  // 2. a new run exists on disk from the start: --resume works even after a crash
  if (s.resume === undefined) {
    save(false);
    if (data.testExamples.length > 0)
      writeFileSync(join(dir, "test.jsonl"), formatExamplesJsonl(data.testExamples));
  }
  // 3. the loop, until the last step, the budget, --stop-after or Ctrl-C
  const sigint = watchSigint(ui);
  const startStep = state.step;
  const threads = run.recipe.workers;
  const workers = threads > 1 ? await startGradientWorkers(state.model, threads) : null;
  const monitor = new RunMonitor({
    state,
    recipe: run.recipe,
    data,
    ui,
    metricsPath: join(dir, "metrics.jsonl"),
    t0,
    elapsedBefore: run.elapsedBefore,
    budget,
    minSteps: run.minSteps,
    refit: s.resume === undefined && s.maxSteps === null && budget !== null,
    evalEvery: s.evalEvery,
    evaluate: workers?.evaluate ?? evaluate,
    checkpointEverySeconds: s.checkpointEverySeconds,
    save,
  });
  try {
    await trainLoop(state, run.recipe, data.train, {
      ...(workers !== null ? { gradient: workers.gradient } : {}),
      shouldStop: (st) => {
        if (sigint.interrupted()) return true;
        if (s.stopAfter !== null && st.step - startStep >= s.stopAfter) return true;
        const spent = budget !== null && (Date.now() - t0) / 1000 >= budget;
        return spent && st.step >= run.minSteps;
      },
      onStep: (m, st) => monitor.onStep(m, st),
    });
  } finally {
    await workers?.close();
    sigint.stop();
    ui.done();
  }
  // 4. the final checkpoint
  const finished = state.step >= state.totalSteps;
  save(finished);
  return {
    dir,
    steps: state.step,
    finished,
    interrupted: sigint.interrupted(),
    lastLoss: monitor.lastLoss,
    tokenizer: data.tokenizer,
    model: state.model,
    evalExamples: data.evalExamples,
  };
}

/** Saves the run in `dir` as it stands; `finished` marks a run that reached its last step. */
function checkpointer(dir: string, run: PreparedRun, t0: number): (finished: boolean) => void {
  const { state, recipe, source } = run;
  const tokenizerJson = run.data.tokenizer.toJSON();
  // over all invocations, so that a --resume without --time-budget gets what is left
  const budgetTotal = run.budget === null ? null : run.elapsedBefore + run.budget;
  return (finished) => {
    const st: TrainerStateJson = {
      version: 1,
      step: state.step,
      totalSteps: state.totalSteps,
      seed: state.seed,
      tokens: state.tokens,
      elapsedSeconds: run.elapsedBefore + (Date.now() - t0) / 1000,
      recipe: { ...recipe },
      data: { ...source },
      timeBudgetSeconds: budgetTotal,
      minSteps: run.minSteps,
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
}

/** Ctrl-C finishes the current step and saves; a second one quits at once. */
function watchSigint(ui: ProgressBar): { interrupted: () => boolean; stop: () => void } {
  let interrupted = false;
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints > 1) process.exit(130);
    interrupted = true;
    ui.log("Ctrl-C: finishing this step, saving a checkpoint (press again to quit at once)");
  };
  process.on("SIGINT", onSigint);
  return {
    interrupted: () => interrupted,
    stop: () => process.off("SIGINT", onSigint),
  };
}
