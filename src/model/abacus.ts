/**
 * Abacus embeddings (McLeish et al. 2024, "Transformers Can Do Arithmetic with the Right
 * Embeddings"), loom's extension of the reference: every digit token gets, on top of its token
 * embedding, a learned embedding of its place within its run of digits, so that the k-th digits
 * of two numbers find each other by content, wherever they stand. Rotary positions alone give a
 * digit only its distance to the other number's, which changes with the numbers' length: a model
 * trained on 8-digit sums never adds 9-digit ones.
 *
 *   place(t) = 0                        token t is not a digit
 *            = offset + 1               a digit after a non-digit (a number starts)
 *            = place(t - 1) + 1         a digit after a digit
 *
 * clamped at `abacusPlaces - 1`. Training draws each row's offset at random, so that the places
 * of long numbers are trained on short ones; inference uses offset 0. Under `rotary_positions`
 * "place", where the places turn RoPE too, a non-digit's place is the offset rather than 0: the
 * whole row moves, and the `=` stands one place before the first digits at every offset.
 */
import type { Rng } from "../tensor/random.ts";
import type { ModelConfig } from "./config.ts";

/** Whether the config has Abacus embeddings. */
export const hasAbacus = (c: ModelConfig): boolean => c.abacusPlaces > 0;

export interface PlaceOptions {
  /** (B) each row's offset (default 0: inference). */
  offsets?: Int32Array;
  /** (B) the place of each row's token before the chunk (default 0: the chunk starts a row). */
  before?: Int32Array;
}

/** The places (B·T) of (B, T) token ids. */
export function abacusPlaces(
  c: ModelConfig,
  ids: Int32Array,
  B: number,
  T: number,
  o: PlaceOptions = {},
): Int32Array {
  const digits = new Set(c.abacusDigits);
  const top = c.abacusPlaces - 1;
  const places = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const offset = o.offsets?.[b] ?? 0;
    const nonDigit = c.rotaryPositions === "place" ? offset : 0;
    let prev = o.before?.[b] ?? 0; // the place of the digit before, 0 after a non-digit
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!digits.has(ids[i])) prev = 0;
      else prev = Math.min(top, prev > 0 ? prev + 1 : offset + 1);
      places[i] = prev > 0 ? prev : nonDigit;
    }
  }
  return places;
}

/** The places (B·T) of (B, T) ids whose rows start their sequences; undefined without Abacus. */
export function sequencePlaces(
  c: ModelConfig,
  ids: Int32Array,
  B: number,
  T: number,
): Int32Array | undefined {
  return hasAbacus(c) ? abacusPlaces(c, ids, B, T) : undefined;
}

/**
 * The places of `seq[start, start + T)`, a chunk of one sequence (B = 1) whose earlier tokens
 * are known, as a cached forward needs them; undefined for a model without Abacus embeddings.
 */
export function chunkPlaces(
  c: ModelConfig,
  seq: readonly number[],
  start: number,
  T: number,
): Int32Array | undefined {
  if (!hasAbacus(c)) return undefined;
  const all = abacusPlaces(c, Int32Array.from(seq.slice(0, start + T)), 1, start + T);
  return all.slice(start, start + T);
}

/** The longest run of digits in each row of (B, T) ids. */
function longestRuns(c: ModelConfig, ids: Int32Array, B: number, T: number): Int32Array {
  const digits = new Set(c.abacusDigits);
  const longest = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let run = 0;
    for (let t = 0; t < T; t++) {
      run = digits.has(ids[b * T + t]) ? run + 1 : 0;
      longest[b] = Math.max(longest[b], run);
    }
  }
  return longest;
}

/**
 * Training places of (B, T) ids: each row's offset drawn uniformly from those that keep its
 * longest number inside the table, [0, abacusPlaces - 1 - longest run].
 */
export function randomAbacusPlaces(
  c: ModelConfig,
  ids: Int32Array,
  B: number,
  T: number,
  rng: Rng,
): Int32Array {
  const longest = longestRuns(c, ids, B, T);
  const offsets = longest.map((run) => rng.int(Math.max(1, c.abacusPlaces - run)));
  return abacusPlaces(c, ids, B, T, { offsets });
}
