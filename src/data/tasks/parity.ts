import { range, type TaskSpec } from "./spec.ts";

/**
 * Bit-string parity, `"10110"` → `"1"`.
 *
 * Difficulty: the length n of the bit string (uniformly random bits). Answer: "1" when the
 * string holds an odd number of ones, else "0". Prompt length n. Below 4 bits there are too few
 * strings (2^n) for a held-out quarter to mean anything (length 1 has no test-split string at
 * all), so the defaults train on 4-10 bits and test on 4-20. The trainer gives this scan a model
 * that sees two positions per block (attention window 2, src/train/window.ts): its loop then
 * computes the prefix parity one position per layer, which extends to any length (100% on 48
 * bits at r = 32 after 10 minutes on 4-10; bench/recipe-notes.md, session 6).
 */
export const parity: TaskSpec = {
  minDifficulty: 1,
  maxDifficulty: 1000,
  trainDifficulties: range(4, 10),
  sample(rng, length) {
    let bits = "";
    let ones = 0;
    for (let i = 0; i < length; i++) {
      const bit = rng.int(2);
      bits += String(bit);
      ones += bit;
    }
    return { prompt: bits, answer: String(ones % 2) };
  },
};
