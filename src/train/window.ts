/**
 * The attention window and the depth per difficulty level a data set suggests when the user
 * gives none.
 *
 * A looped model with a sliding window (`attention_window` w) carries information along the
 * string at most w − 1 positions per block, so on a task that is a left-to-right scan of a small
 * state (parity, swaps, a grid walk) the rule it learns holds at any length: such models reach
 * twice the trained length and more, where full attention stops short (bench/recipe-notes.md,
 * session 6).
 *
 * The signs of such a task in the data: the prompt grows with the difficulty level (one more
 * move, bit, swap) while the answer does not (a final state, not the sum of two long numbers).
 * Each level adds s characters of prompt; the "difficulty" depth scheme grants c iterations per
 * level (c = `depthPerDifficulty`), and c iterations of L core blocks move information
 * L·c·(w − 1) positions. Two regimes, both measured (bench/recipe-notes.md, sessions 6-11):
 * - Short levels (s ≤ 2L: a bit, a move, a swap "12,"): a state update per level. The window is
 *   the smallest whose light cone crosses one level in c iterations, w = 1 + ⌈s / (L·c)⌉
 *   (c = 1: parity s = 1, w = 2; swaps s = 3, w = 3; a window of 2 left swaps at chance).
 * - Long levels (s > 2L: pointer-chasing's two assignments "k=r,v=c,", reachability's edges): a
 *   name to find and compare, not a state update. The short-level rule's w = 5 at c = 1 stayed
 *   on the plateau on both tasks (PCW5, RD), c = 3 at w = 5 learned at one seed of two, and a
 *   window spanning three levels solved them without the loop (PCW13). What learns
 *   (pointer-chasing at four seeds of four, reachability at three) is two iterations per level
 *   with a window that reaches 1.5 levels per iteration: c = 2, w = 1 + ⌈1.5·s / L⌉ (s = 8:
 *   w = 7; PCW7C2, RB0-RB3). A grid walk spelled out in words (s = 4.7) learns with these as
 *   with the short-level ones (GWA, GWS, session 14).
 * Anything else gets full attention and the default depth.
 */
import type { Example } from "../data/example.ts";

export interface WindowChoice {
  /** 0 = full causal attention. */
  window: number;
  /** Why, in words, for the training banner. */
  reason: string;
}

export interface DepthChoice {
  /** c: core iterations per difficulty level. */
  depthPerDifficulty: number;
  /** Why, in words, for the training banner. */
  reason: string;
}

export interface WindowContext {
  /** L: blocks in the recurrent core. */
  coreLayers: number;
  /** c: core iterations the depth scheme grants per difficulty level; null = depth not tied. */
  depthPerDifficulty: number | null;
}

/** Fewer difficulty levels than this tell no trend. */
export const MIN_LEVELS = 3;
/** c for long levels, and how many levels one iteration's light cone should reach. */
const LONG_LEVEL_DEPTH = 2;
const LONG_LEVEL_REACH = 1.5;

export function suggestAttentionWindow(
  examples: readonly Example[],
  ctx: WindowContext,
): WindowChoice {
  if (ctx.depthPerDifficulty === null) return full("the depth is not tied to the difficulty");
  const scan = readScan(examples);
  if (typeof scan === "string") return full(scan);
  const L = ctx.coreLayers;
  const long = isLong(scan, L);
  const window = long
    ? 1 + Math.ceil((LONG_LEVEL_REACH * scan.perLevel) / L)
    : 1 + Math.ceil(scan.perLevel / (L * ctx.depthPerDifficulty));
  return { window, reason: `${long ? "a scan of long levels" : "a scan"}: ${describe(scan)}` };
}

/**
 * The iterations per difficulty level for data of long levels (see the file comment); null when
 * the default (one) fits.
 */
export function suggestDepthPerDifficulty(
  examples: readonly Example[],
  coreLayers: number,
): DepthChoice | null {
  const scan = readScan(examples);
  if (typeof scan === "string" || !isLong(scan, coreLayers)) return null;
  return {
    depthPerDifficulty: LONG_LEVEL_DEPTH,
    reason: `long levels: ${describe(scan)}, more than two per core block`,
  };
}

interface Scan {
  perLevel: number; // s: prompt characters per difficulty level
}

function isLong(scan: Scan, coreLayers: number): boolean {
  return scan.perLevel > 2 * coreLayers;
}

function describe(scan: Scan): string {
  const s = scan.perLevel;
  return (
    `the prompt grows by ${round(s)} character${s === 1 ? "" : "s"} per difficulty level ` +
    "and the answer does not"
  );
}

/** The data as a scan, or why it is not one. */
function readScan(examples: readonly Example[]): Scan | string {
  const levels = byDifficulty(examples);
  if (levels === null) return "not every example has a difficulty";
  if (levels.length < MIN_LEVELS) return `fewer than ${MIN_LEVELS} difficulty levels`;
  const easiest = levels[0];
  const hardest = levels[levels.length - 1];
  if (hardest.longestAnswer > easiest.longestAnswer) return "the answer grows with the difficulty";
  if (levels.some((l, i) => i > 0 && l.meanPrompt <= levels[i - 1].meanPrompt)) {
    return "the prompt does not grow with the difficulty";
  }
  const perLevel =
    (hardest.meanPrompt - easiest.meanPrompt) / (hardest.difficulty - easiest.difficulty);
  return { perLevel };
}

function full(reason: string): WindowChoice {
  return { window: 0, reason };
}

interface Level {
  difficulty: number;
  meanPrompt: number; // characters
  longestAnswer: number; // characters
}

/** Prompt and answer lengths per difficulty, ascending; null when an example has none. */
export function byDifficulty(examples: readonly Example[]): Level[] | null {
  const groups = new Map<number, Example[]>();
  for (const e of examples) {
    if (e.difficulty === undefined) return null;
    const group = groups.get(e.difficulty);
    if (group === undefined) groups.set(e.difficulty, [e]);
    else group.push(e);
  }
  if (groups.size === 0) return null;
  const length = (s: string) => Array.from(s).length; // code points: the char tokenizer's tokens
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([difficulty, group]) => ({
      difficulty,
      meanPrompt: group.reduce((sum, e) => sum + length(e.prompt), 0) / group.length,
      longestAnswer: group.reduce((most, e) => Math.max(most, length(e.answer)), 0),
    }));
}

function round(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
