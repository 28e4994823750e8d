/**
 * Abacus places (src/model/abacus.ts) for data whose answers are numbers, when the user gives
 * none.
 *
 * The sign of arithmetic in the data: every answer is a number (decimal digits) and the longest
 * answer grows with the difficulty level (one more digit of the operands, one more of the result).
 * Such data gets Abacus places together with near-constant rotary positions (a rotary base of
 * 1e40 leaves only the first pair of each head turning), so that the k-th digits of two numbers
 * find each other by their place rather than by their distance. On multi-digit addition in 30
 * minutes the pair learns 2-8 digits (seed 0 at one thread, seed 1 on both cores), 2-6 (seeds
 * 1 and 2 at one thread, seed 2 on both cores) or 2-4 (seed 0 on both cores), where the old
 * defaults learned 2-4, places alone 2-6 and near-constant positions alone 2-5; on subtraction
 * it is no clear gain (bench/recipe-notes.md, sessions 17-19).
 *
 * The table holds the places 1..2n + 1 of a number twice as long as the longest run of n digits
 * in the data, and its carry: P = 2n + 2 (sums of 2-8 digits: n = 9, P = 20, the size measured).
 */
import type { Example } from "../data/example.ts";
import { MIN_LEVELS, byDifficulty } from "./window.ts";

export interface AbacusChoice {
  /** P: the Abacus places of the model (config.json `abacus_places`). */
  places: number;
  /** θ of the rotary embedding (config.json `rope_base`). */
  ropeBase: number;
  /** Why, in words, for the training banner. */
  reason: string;
}

/** A rotary base that leaves positions all but constant. */
export const NEAR_CONSTANT_ROPE_BASE = 1e40;

const NUMBER = /^[0-9]+$/;
const DIGIT_RUN = /[0-9]+/g;

/** Abacus places for arithmetic-like data (see the file comment); null for anything else. */
export function suggestAbacus(examples: readonly Example[]): AbacusChoice | null {
  const levels = byDifficulty(examples);
  if (levels === null || levels.length < MIN_LEVELS) return null;
  if (!examples.every((e) => NUMBER.test(e.answer))) return null;
  if (levels[levels.length - 1].longestAnswer <= levels[0].longestAnswer) return null;
  const n = examples.reduce(
    (most, e) => Math.max(most, longestDigitRun(e.prompt), e.answer.length),
    0,
  );
  return {
    places: 2 * n + 2,
    ropeBase: NEAR_CONSTANT_ROPE_BASE,
    reason: "the answer is a number that grows with the difficulty",
  };
}

function longestDigitRun(text: string): number {
  let longest = 0;
  for (const run of text.matchAll(DIGIT_RUN)) longest = Math.max(longest, run[0].length);
  return longest;
}
