import { shuffleInPlace } from "../shuffle.ts";
import { randomLetters, range, type TaskSpec } from "./spec.ts";

/**
 * Multi-hop variable binding, `"b=a,c=7,a=3,d=c;b?"` → `"3"`.
 *
 * Difficulty: the number of hops h, i.e. the length of the chain of assignments from the
 * queried variable down to a digit (`a=3` is one hop, `b=a,a=3` two). A distractor chain of the
 * same length ends in a different digit; all 2h assignments are shuffled; variables are distinct
 * lowercase letters (so h ≤ 13). Answer: the single digit. Prompt length 8h + 2.
 */
export const pointerChasing: TaskSpec = {
  minDifficulty: 1,
  maxDifficulty: 13,
  trainDifficulties: range(1, 4),
  sample(rng, hops) {
    const names = randomLetters(rng, 2 * hops);
    const value = rng.int(10);
    const distractorValue = (value + 1 + rng.int(9)) % 10;
    const chain = bindingChain(names.slice(0, hops), value);
    const distractor = bindingChain(names.slice(hops), distractorValue);
    const assignments = shuffleInPlace([...chain, ...distractor], rng);
    return { prompt: `${assignments.join(",")};${names[hops - 1]}?`, answer: String(value) };
  },
};

/** `v0=value, v1=v0, v2=v1, ...`: the last name holds `value` through the whole chain. */
function bindingChain(names: readonly string[], value: number): string[] {
  return names.map((name, i) => `${name}=${i === 0 ? String(value) : names[i - 1]}`);
}
