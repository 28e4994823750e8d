import { interleave, randomLetters, range, type TaskSpec } from "./spec.ts";

/**
 * Multi-hop variable binding, `"b?b=a,e=d,a=3,d=6;b?"` → `"3"`.
 *
 * Difficulty: the number of hops h, i.e. the length of the chain of assignments from the
 * queried variable down to a digit (`a=3` is one hop, `b=a,a=3` two). A distractor chain of the
 * same length ends in a different digit; variables are distinct lowercase letters (so h ≤ 13).
 * Answer: the single digit. Prompt length 8h + 4.
 *
 * Layout: the question comes first and again last, and each chain is written goal-first (the
 * queried variable's assignment before the one it refers to); the two chains are interleaved at
 * random. A causal model reads every assignment after the ones it depends on, so "this
 * assignment is on the queried chain" can flow forward one hop per iteration. With the chains
 * in random order instead, a looped model stays at 50% (picking one of the two digits) for 30
 * minutes even at one hop (bench/recipe-notes.md, PC30, PCQ, PCG).
 *
 * Training: a level (hop) is 8 characters long, so the trainer's rule for long levels
 * (src/train/window.ts) gives two iterations per hop and a window of 7: one iteration of the two
 * core blocks reaches 12 characters back (one and a half hops) and a hop's two reach three hops.
 * Trained 30 minutes, that model gets 1-4 hops from 66% at r = 1 to 100% at r = 4 and 8 hops to
 * 95% at r = 16 (PCW7C2). One iteration per hop at w = 5 learns one hop in 30 minutes (PCW5);
 * three iterations per hop at w = 5 chain 1-4 hops at one seed and not another (PCC3L,
 * PCC3S1); one iteration at w = 13 learns 1-4 hops but already at r = 1, and 6-8 never (PCW13).
 */
export const pointerChasing: TaskSpec = {
  minDifficulty: 1,
  maxDifficulty: 13,
  trainDifficulties: range(1, 4),
  sample(rng, hops) {
    const names = randomLetters(rng, 2 * hops);
    const value = rng.int(10);
    const distractorValue = (value + 1 + rng.int(9)) % 10;
    const chain = goalFirstChain(names.slice(0, hops), value);
    const distractor = goalFirstChain(names.slice(hops), distractorValue);
    const question = `${names[hops - 1]}?`;
    const assignments = interleave(rng, chain, distractor);
    return { prompt: `${question}${assignments.join(",")};${question}`, answer: String(value) };
  },
};

/**
 * `v[h-1]=v[h-2], ..., v1=v0, v0=value`: the last name holds `value` through the whole chain,
 * written from the last name down.
 */
function goalFirstChain(names: readonly string[], value: number): string[] {
  return names.map((name, i) => `${name}=${i === 0 ? String(value) : names[i - 1]}`).reverse();
}
