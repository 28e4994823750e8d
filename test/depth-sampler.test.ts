import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../src/tensor/random.ts";
import { depthForStep, sampleDepth, type DepthConfig } from "../src/train/depth-sampler.ts";

const HUGINN: DepthConfig = { meanRecurrence: 32, meanBackpropDepth: 8 };

/** Total iterations p of `count` draws, sorted ascending. */
function drawTotals(count: number, seed: number): number[] {
  const rng = new Rng(seed);
  const totals: number[] = [];
  for (let i = 0; i < count; i++) {
    const d = sampleDepth("poisson-lognormal-filling", HUGINN, rng);
    totals.push(d.noGradSteps + d.gradSteps);
  }
  return totals.sort((a, b) => a - b);
}

test("poisson-lognormal-filling matches the reference Monte-Carlo statistics", () => {
  const n = 200_000;
  const p = drawTotals(n, 20250205);
  const mean = p.reduce((a, b) => a + b, 0) / n;
  const fraction = (pred: (x: number) => boolean) => p.filter(pred).length / n;
  // reference (2M draws): mean 33.0, median 29, P(p<=8) 1.4%, P(p>64) 5.8%, 95% <= 67
  assert.ok(Math.abs(mean - 33.0) < 0.25, `mean ${mean}`);
  assert.ok(Math.abs(p[n / 2] - 29) <= 1, `median ${p[n / 2]}`);
  assert.ok(Math.abs(fraction((x) => x <= 8) - 0.014) < 0.002, "P(p <= 8)");
  assert.ok(Math.abs(fraction((x) => x > 64) - 0.058) < 0.004, "P(p > 64)");
  assert.ok(Math.abs(p[Math.floor(0.95 * n)] - 67) <= 1, `95th percentile ${p[0.95 * n]}`);
  assert.ok(p[0] >= 1, "p >= 1 always");
});

test("poisson-lognormal-filling splits p into n = max(p - k̄, 0) and k = min(k̄, p)", () => {
  const rng = new Rng(7);
  let sawShort = false;
  for (let i = 0; i < 20_000; i++) {
    const { noGradSteps: n, gradSteps: k } = sampleDepth("poisson-lognormal-filling", HUGINN, rng);
    const p = n + k;
    assert.ok(Number.isInteger(n) && Number.isInteger(k));
    assert.equal(k, Math.min(8, p));
    assert.equal(n, Math.max(p - 8, 0));
    if (p < 8) sawShort = true;
  }
  assert.ok(sawShort, "draws with p < k̄ occur and keep every iteration in the graph");
});

test("fixed scheme runs r̄ iterations, the last min(k̄, r̄) with gradient", () => {
  const rng = new Rng(1);
  const before = rng.getState();
  assert.deepEqual(sampleDepth("fixed", HUGINN, rng), { noGradSteps: 24, gradSteps: 8 });
  assert.deepEqual(sampleDepth("fixed", { meanRecurrence: 4, meanBackpropDepth: 8 }, rng), {
    noGradSteps: 0,
    gradSteps: 4,
  });
  assert.deepEqual(sampleDepth("fixed", { meanRecurrence: 1, meanBackpropDepth: 1 }, rng), {
    noGradSteps: 0,
    gradSteps: 1,
  });
  assert.deepEqual(rng.getState(), before, "fixed consumes no randomness");
});

test("sampling is deterministic for a seed", () => {
  const a = drawTotals(1000, 99);
  const b = drawTotals(1000, 99);
  assert.deepEqual(a, b);
});

test("depthForStep depends only on (seed, step), so a resumed run redraws the same depths", () => {
  const run = (seed: number, from: number, to: number) => {
    const out = [];
    for (let s = from; s < to; s++)
      out.push(depthForStep("poisson-lognormal-filling", HUGINN, seed, s));
    return out;
  };
  const full = run(233, 0, 100);
  const resumed = [...run(233, 0, 40), ...run(233, 40, 100)];
  assert.deepEqual(resumed, full);
  const fresh = new Rng(233 * 1_000_003 + 17);
  assert.deepEqual(full[17], sampleDepth("poisson-lognormal-filling", HUGINN, fresh));
  assert.notDeepEqual(run(234, 0, 100), full, "another seed draws other depths");
});

test("invalid configurations and seeds are rejected", () => {
  const rng = new Rng(0);
  assert.throws(() => sampleDepth("fixed", { meanRecurrence: 0, meanBackpropDepth: 1 }, rng));
  assert.throws(() => sampleDepth("fixed", { meanRecurrence: 4.5, meanBackpropDepth: 1 }, rng));
  assert.throws(() => sampleDepth("fixed", { meanRecurrence: 4, meanBackpropDepth: -1 }, rng));
  assert.throws(() => depthForStep("fixed", HUGINN, -1, 0), /seed/);
  assert.throws(() => depthForStep("fixed", HUGINN, 2 ** 50, 0), /seed/);
});
