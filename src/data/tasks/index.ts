/**
 * Built-in reasoning tasks with a difficulty knob, for measuring how accuracy grows with
 * test-time recurrence. Train and test splits are deterministic per seed and disjoint (see
 * split.ts); the default test difficulties run to twice the hardest training difficulty, so
 * out-of-distribution generalisation is measured there.
 */
import { Rng } from "../../tensor/random.ts";
import type { Example } from "../example.ts";
import { addition } from "./addition.ts";
import { parity } from "./parity.ts";
import { pointerChasing } from "./pointer-chasing.ts";
import { reachability } from "./reachability.ts";
import { swaps } from "./swaps.ts";
import { range, type Instance, type TaskSpec } from "./spec.ts";
import { hashString, splitOf, type Split } from "./split.ts";

export type { Split } from "./split.ts";

export type TaskName = "addition" | "pointer-chasing" | "reachability" | "parity" | "swaps";

export const TASK_NAMES: readonly TaskName[] = [
  "addition",
  "pointer-chasing",
  "reachability",
  "parity",
  "swaps",
];

export interface TaskOptions {
  split: Split;
  /** Examples to generate, spread evenly over `difficulties` (counts differ by at most one). */
  count: number;
  /** Any integer; the train and test streams of one seed are independent. */
  seed: number;
  difficulties: readonly number[];
}

/** Whether `name` is a built-in task (for command lines and config files). */
export function isTaskName(name: string): name is TaskName {
  return (TASK_NAMES as readonly string[]).includes(name);
}

/**
 * `count` examples of task `name` from one split, each with its `difficulty` set; example i has
 * difficulty `difficulties[i % difficulties.length]`. Deterministic in (name, split, seed).
 */
export function generateTask(name: TaskName, options: TaskOptions): Example[] {
  const spec = taskSpec(name);
  checkOptions(name, spec, options);
  const { split, count, seed, difficulties } = options;
  const rng = new Rng(hashString(`${name}/${split}/${seed}`));
  return Array.from({ length: count }, (_, i) => {
    const difficulty = difficulties[i % difficulties.length];
    const ordinal = Math.floor(i / difficulties.length);
    return { ...sampleInSplit(name, spec, rng, difficulty, ordinal, split), difficulty };
  });
}

/** The difficulties a model of this task trains on by default. */
export function defaultTrainDifficulties(name: TaskName): number[] {
  return [...taskSpec(name).trainDifficulties];
}

/** The default evaluation difficulties: from the easiest training one to twice the hardest. */
export function defaultTestDifficulties(name: TaskName): number[] {
  const train = taskSpec(name).trainDifficulties;
  return range(Math.min(...train), 2 * Math.max(...train));
}

/** Exact match after trimming whitespace on both sides. */
export function scoreAnswer(pred: string, answer: string): boolean {
  return pred.trim() === answer.trim();
}

function taskSpec(name: TaskName): TaskSpec {
  switch (name) {
    case "addition":
      return addition;
    case "pointer-chasing":
      return pointerChasing;
    case "reachability":
      return reachability;
    case "parity":
      return parity;
    case "swaps":
      return swaps;
    default:
      throw new Error(`unknown task ${String(name satisfies never)}`);
  }
}

function checkOptions(name: TaskName, spec: TaskSpec, options: TaskOptions): void {
  const { count, seed, difficulties } = options;
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`${name}: count must be a non-negative integer, got ${count}`);
  }
  if (!Number.isInteger(seed))
    throw new RangeError(`${name}: seed must be an integer, got ${seed}`);
  if (difficulties.length === 0) throw new RangeError(`${name}: no difficulties given`);
  for (const d of difficulties) {
    if (!Number.isInteger(d) || d < spec.minDifficulty || d > spec.maxDifficulty) {
      throw new RangeError(
        `${name}: difficulty ${d} is not an integer in [${spec.minDifficulty}, ${spec.maxDifficulty}]`,
      );
    }
  }
}

const MAX_DRAWS = 1000;

/** Draw instances until one falls in `split`; a quarter (test) or three quarters (train) do. */
function sampleInSplit(
  name: TaskName,
  spec: TaskSpec,
  rng: Rng,
  difficulty: number,
  ordinal: number,
  split: Split,
): Instance {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const instance = spec.sample(rng, difficulty, ordinal);
    if (splitOf(instance.prompt) === split) return instance;
  }
  throw new RangeError(
    `${name}: no ${split}-split instance at difficulty ${difficulty} in ${MAX_DRAWS} draws ` +
      "(the instance space is too small to split)",
  );
}
