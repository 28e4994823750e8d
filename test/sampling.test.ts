// Logits processors and seeded sampling.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyRepetitionPenalty,
  minP,
  sampleToken,
  samplingDistribution,
  softmax,
  topK,
  topP,
} from "../src/generate/sampling.ts";
import { Rng } from "../src/tensor/random.ts";

const logits = Float32Array.from([2, 1, 0, -1, 3]);

test("greedy is the argmax (first on ties); repetition penalty as in HF", () => {
  assert.equal(sampleToken(logits, { greedy: true }, new Rng(0)), 4);
  assert.equal(sampleToken(Float32Array.from([1, 5, 5]), { greedy: true }, new Rng(0)), 1);
  assert.deepEqual(Array.from(applyRepetitionPenalty(logits, [4, 3], 2)), [2, 1, 0, -2, 1.5]);
  assert.equal(sampleToken(logits, { greedy: true, repetitionPenalty: 2 }, new Rng(0), [4]), 0);
});

test("top-k, top-p and min-p keep the right tokens", () => {
  const p = softmax([0, 1, 2, 3].map(Math.log).map((x, i) => (i === 0 ? Math.log(0.1) : x)));
  // p ≈ [0.1, 1, 2, 3] / 6.1
  assert.deepEqual(
    Array.from(topK(p, 2), (x) => x > 0),
    [false, false, true, true],
  );
  assert.deepEqual(
    Array.from(topP(p, 0.5), (x) => x > 0),
    [false, false, false, true],
  );
  assert.deepEqual(
    Array.from(topP(p, 0.85), (x) => x > 0),
    [false, false, true, true],
  );
  assert.deepEqual(
    Array.from(minP(p, 0.5), (x) => x > 0),
    [false, false, true, true],
  );
  const d = samplingDistribution(Float32Array.from([0, 0, 10]), { greedy: false, temperature: 100 }); // prettier-ignore
  assert.ok(Math.abs(d[0] - d[2]) < 0.05, "a high temperature flattens");
  assert.ok(Math.abs(d.reduce((a, b) => a + b, 0) - 1) < 1e-12);
});

test("seeded sampling is reproducible and follows the distribution", () => {
  const o = { greedy: false, temperature: 1 };
  const draw = (seed: number): number[] => {
    const rng = new Rng(seed);
    return Array.from({ length: 4000 }, () => sampleToken(logits, o, rng));
  };
  assert.deepEqual(draw(1), draw(1));
  const counts = new Array(5).fill(0) as number[];
  for (const t of draw(2)) counts[t]++;
  const p = softmax(logits);
  counts.forEach((c, i) => {
    assert.ok(Math.abs(c / 4000 - p[i]) < 0.03, `token ${i}: ${c / 4000} vs ${p[i]}`);
  });
  const k1 = draw(3).map((t) => t === 4);
  assert.ok(k1.some((x) => !x));
  const rng = new Rng(4);
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, { ...o, topK: 1 }, rng), 4);
});
