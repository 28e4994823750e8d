/**
 * Abacus places (src/model/abacus.ts) for data whose answers are numbers, when the user gives
 * none.
 *
 * The sign of arithmetic in the data: every answer is a number (decimal digits) and the longest
 * answer grows with the difficulty level (one more digit of the operands, one more of the result).
 * Such data gets Abacus places and no rotary positions at all (config.json `rotary_pct` 0), so
 * that the k-th digits of two numbers find each other by their place alone, never by their
 * distance, which differs with every length. On multi-digit addition in 30 minutes at one thread
 * the pair learns 2-8 digits at seeds 0 and 2 (95-100% from r = 8), and 9 digits at 10% at seed
 * 0, the first sums longer than any trained it gets right. With the first rotary pair still
 * turning (`rope_base` 1e40, the rule until session 20) each length was learned on its own, from
 * chance, and 2-8 digits at one seed of three; plain rotary positions learned 2-4
 * (bench/recipe-notes.md, sessions 17-20).
 *
 * The table holds the places 1..2n + 1 of a number twice as long as the longest run of n digits
 * in the data, and its carry: P = 2n + 2 (sums of 2-8 digits: n = 9, P = 20, the size measured).
 */
import type { Example } from "../data/example.ts";
import { MIN_LEVELS, byDifficulty } from "./window.ts";

export interface AbacusChoice {
  /** P: the Abacus places of the model (config.json `abacus_places`). */
  places: number;
  /** The fraction of each head that rotary positions turn (config.json `rotary_pct`). */
  rotaryPct: number;
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
    rotaryPct: 0,
    reason: "the answer is a number that grows with the difficulty",
  };
}

function longestDigitRun(text: string): number {
  let longest = 0;
  for (const run of text.matchAll(DIGIT_RUN)) longest = Math.max(longest, run[0].length);
  return longest;
}
