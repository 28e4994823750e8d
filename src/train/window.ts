/**
 * The attention window a data set suggests when the user gives none.
 *
 * A looped model with a sliding window (`attention_window` w) carries information along the
 * string at most w − 1 positions per block, so on a task that is a left-to-right scan of a small
 * state (parity, swaps, a grid walk) the rule it learns holds at any length: such models reach
 * twice the trained length and more, where full attention stops short (bench/recipe-notes.md,
 * session 6).
 *
 * The signs of such a task in the data: the prompt grows with the difficulty level (one more
 * move, bit, swap) while the answer does not (a final state, not the sum of two long numbers).
 * The window is then the smallest one that lets the state cross one level's worth of prompt in
 * the iterations the "difficulty" depth scheme grants that level: c iterations per level (c =
 * `depthPerDifficulty`) of L core blocks move information L·c·(w − 1) positions, which must
 * reach the s characters a level adds, so w = 1 + ⌈s / (L·c)⌉ (parity: s = 1, w = 2; swaps
 * "12,": s = 3, w = 3; a window of 2 left swaps at chance). Anything else gets full attention.
 */
import type { Example } from "../data/example.ts";

export interface WindowChoice {
  /** 0 = full causal attention. */
  window: number;
  /** Why, in words, for the training banner. */
  reason: string;
}

export interface WindowContext {
  /** L: blocks in the recurrent core. */
  coreLayers: number;
  /** c: core iterations the depth scheme grants per difficulty level; null = depth not tied. */
  depthPerDifficulty: number | null;
}

const MIN_LEVELS = 3;

export function suggestAttentionWindow(
  examples: readonly Example[],
  ctx: WindowContext,
): WindowChoice {
  if (ctx.depthPerDifficulty === null) return full("the depth is not tied to the difficulty");
  const levels = byDifficulty(examples);
  if (levels === null) return full("not every example has a difficulty");
  if (levels.length < MIN_LEVELS) return full(`fewer than ${MIN_LEVELS} difficulty levels`);
  const easiest = levels[0];
  const hardest = levels[levels.length - 1];
  if (hardest.longestAnswer > easiest.longestAnswer) {
    return full("the answer grows with the difficulty");
  }
  if (levels.some((l, i) => i > 0 && l.meanPrompt <= levels[i - 1].meanPrompt)) {
    return full("the prompt does not grow with the difficulty");
  }
  const perLevel =
    (hardest.meanPrompt - easiest.meanPrompt) / (hardest.difficulty - easiest.difficulty);
  const window = 1 + Math.ceil(perLevel / (ctx.coreLayers * ctx.depthPerDifficulty));
  return {
    window,
    reason:
      `a scan: the prompt grows by ${round(perLevel)} character${perLevel === 1 ? "" : "s"} ` +
      "per difficulty level and the answer does not",
  };
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
function byDifficulty(examples: readonly Example[]): Level[] | null {
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
