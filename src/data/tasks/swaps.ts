import { range, type TaskSpec } from "./spec.ts";

/**
 * State tracking: a ball under one of three cups, then a sequence of swaps of two cups.
 * `"2:12,23,13"` → `"3"` (the ball starts under cup 2; swapping 1-2 moves it to 1, 2-3 leaves it,
 * 1-3 moves it to 3).
 *
 * Difficulty: the number of swaps n. Answer: the cup holding the ball at the end. Transpositions
 * do not commute, so the answer is a product of n permutations: no counting shortcut exists
 * (unlike parity), while each swap is a small local update — one natural step per loop
 * iteration. Chance is 1/3.
 */
export const swaps: TaskSpec = {
  minDifficulty: 1,
  maxDifficulty: 200,
  trainDifficulties: range(1, 12),
  sample(rng, n) {
    let ball = 1 + rng.int(3);
    const start = ball;
    const moves: string[] = [];
    for (let i = 0; i < n; i++) {
      const a = 1 + rng.int(3);
      const b = 1 + ((a + rng.int(2)) % 3); // another cup than a
      if (ball === a) ball = b;
      else if (ball === b) ball = a;
      moves.push(`${Math.min(a, b)}${Math.max(a, b)}`);
    }
    return { prompt: `${start}:${moves.join(",")}`, answer: String(ball) };
  },
};
