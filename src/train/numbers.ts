/**
 * Abacus places (src/model/abacus.ts) for data whose answers are numbers, when the user gives
 * none.
 *
 * The sign of arithmetic in the data: every answer is a number (decimal digits) and the longest
 * answer grows with the difficulty level (one more digit of the operands, one more of the result).
 * Such data gets Abacus places, and RoPE turned by the places rather than by the token index
 * (`rotary_positions` "place", all of each head), so that the k-th digits of two numbers find
 * each other by their place, and a digit its neighbours by how many places apart they are, the
 * same at every length. Measured in 30 minutes at one thread (bench/recipe-notes.md, sessions
 * 17-23): on sums written least-significant digit first and trained on 1-8 digits, 1-9 digits
 * at 100% at three seeds (1-11 at two) and 16 digits at 2.5 / 60 / 20%, where places without
 * rotary positions (`rotary_pct` 0, the rule of sessions 20-22) got no sum of 10 digits right;
 * on the built-in order, most significant first, 2-8 digits at 95-100% and 9 digits at 2.5 /
 * 57.5 / 45-50% at seeds 0-2 (the earlier rule: 10 / 2.5-5 / 0%). Plain rotary positions
 * learned 2-4 digits. A window over places (`attention_window` 3 under "place") gets every
 * reversed sum of 1-16 digits right at two seeds, but the built-in order no further than 9
 * digits, and a JSONL file does not tell the digit order: the window is not chosen here.
 *
 * The table holds the places 1..2n + 1 of a number twice as long as the longest run of n digits
 * in the data, and its carry: P = 2n + 2 (sums of 2-8 digits: n = 9, P = 20, the size measured).
 */
import type { Example } from "../data/example.ts";
import type { RotaryPositions } from "../model/config.ts";
import { MIN_LEVELS, byDifficulty } from "./window.ts";

export interface AbacusChoice {
  /** P: the Abacus places of the model (config.json `abacus_places`). */
  places: number;
  /** What turns RoPE (config.json `rotary_positions`). */
  rotaryPositions: RotaryPositions;
  /** Why, in words, for the training banner. */
  reason: string;
}

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
    rotaryPositions: "place",
    reason: "the answer is a number that grows with the difficulty",
  };
}

function longestDigitRun(text: string): number {
  let longest = 0;
  for (const run of text.matchAll(DIGIT_RUN)) longest = Math.max(longest, run[0].length);
  return longest;
}
