import type { Rng } from "../../tensor/random.ts";
import { shuffleInPlace } from "../shuffle.ts";

/** One task instance: the prompt and its (only) correct answer. */
export interface Instance {
  prompt: string;
  answer: string;
}

/** What each built-in task provides to the generic generator. */
export interface TaskSpec {
  /** Supported difficulties: integers in [minDifficulty, maxDifficulty]. */
  minDifficulty: number;
  maxDifficulty: number;
  /** Default training difficulties; the default test range extends to twice the largest. */
  trainDifficulties: readonly number[];
  /**
   * A random instance at `difficulty`. `ordinal` counts the instances drawn at this difficulty
   * (0, 1, 2, ...) so a task can balance its answers exactly.
   */
  sample(rng: Rng, difficulty: number, ordinal: number): Instance;
}

/** `k` distinct lowercase letters in random order. */
export function randomLetters(rng: Rng, k: number): string[] {
  const letters = Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i));
  return shuffleInPlace(letters, rng).slice(0, k);
}

/** Integers lo, lo + 1, ..., hi. */
export function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** A uniformly random merge of `a` and `b` that keeps the order within each. */
export function interleave<T>(rng: Rng, a: readonly T[], b: readonly T[]): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const leftA = a.length - i;
    const leftB = b.length - j;
    if (rng.int(leftA + leftB) < leftA) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}
