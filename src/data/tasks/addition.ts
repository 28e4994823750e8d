import type { Rng } from "../../tensor/random.ts";
import { range, type TaskSpec } from "./spec.ts";

/**
 * Multi-digit addition, `"57+68="` → `"125"`.
 *
 * Difficulty: the number of digits of each operand (both exactly that long, no leading zero;
 * one digit allows 0). Answer: the decimal sum, most-significant digit first, no leading zeros
 * (d or d + 1 digits). Prompt length 2d + 2. One-digit sums are too few (100) for a held-out
 * quarter to test anything but memory (a model trained on 1-8 digits was right on 65% of the
 * held-out ones and 95-100% of 2-8 digits: bench/recipe-notes.md, A30), so the defaults train on
 * 2-8 digits and test on 2-16. The trainer reads Abacus places off the data, with RoPE turned by
 * the places (src/train/numbers.ts): in 30 minutes at one thread they learn 2-8 digits at seeds
 * 0-2, each length from its own r, and 9-digit sums at 2.5 / 57.5 / 45-50%, 10 digits at 0 /
 * 27.5 / 7.5%, where plain rotary positions learn 2-4. Sums of 12 digits or more stay at 0-12.5%
 * (bench/recipe-notes.md, sessions 13 and 16-23); written least-significant digit first, with
 * a window of 3 places (`attention_window` 3), every sum of 1-16 digits comes right (session 23).
 */
export const addition: TaskSpec = {
  minDifficulty: 1,
  maxDifficulty: 100,
  trainDifficulties: range(2, 8),
  sample(rng, digits) {
    const a = randomNumber(rng, digits);
    const b = randomNumber(rng, digits);
    return { prompt: `${a}+${b}=`, answer: addDecimal(a, b) };
  },
};

/** A random `digits`-long decimal string without a leading zero (except "0" itself). */
function randomNumber(rng: Rng, digits: number): string {
  if (digits === 1) return String(rng.int(10));
  let s = String(1 + rng.int(9));
  for (let i = 1; i < digits; i++) s += String(rng.int(10));
  return s;
}

/** Sum of two non-negative decimal strings of any length, by schoolbook carrying. */
function addDecimal(a: string, b: string): string {
  let sum = "";
  let carry = 0;
  for (let i = 1; i <= Math.max(a.length, b.length); i++) {
    const d = digitAt(a, a.length - i) + digitAt(b, b.length - i) + carry;
    sum = String(d % 10) + sum;
    carry = Math.floor(d / 10);
  }
  return carry > 0 ? `1${sum}` : sum;
}

function digitAt(s: string, i: number): number {
  return i >= 0 ? s.charCodeAt(i) - 48 : 0;
}
