// The seeded generator: moments of each distribution, bounds, determinism and exact resume.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng, logGamma } from "../src/tensor/random.ts";

const N = 200_000;

function moments(draw: () => number): { mean: number; variance: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < N; i++) {
    const x = draw();
    s += x;
    s2 += x * x;
  }
  const mean = s / N;
  return { mean, variance: s2 / N - mean * mean };
}

const near = (got: number, want: number, tol: number, what: string): void => {
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);
};

test("uniform [0, 1) and int", () => {
  const r = new Rng(1);
  const m = moments(() => r.uniform());
  near(m.mean, 0.5, 0.005, "uniform mean");
  near(m.variance, 1 / 12, 0.002, "uniform variance");
  for (let i = 0; i < 1000; i++) {
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
  }
});

test("normal, truncated normal, log-normal", () => {
  const r = new Rng(2);
  const n = moments(() => r.normal());
  near(n.mean, 0, 0.01, "normal mean");
  near(n.variance, 1, 0.015, "normal variance");
  const t = moments(() => {
    const x = r.truncNormal(0, 1, -3, 3);
    assert.ok(x >= -3 && x <= 3);
    return x;
  });
  near(Math.sqrt(t.variance), 0.9866, 0.006, "std of N(0,1) truncated at ±3");
  const ln = moments(() => r.logNormal(Math.log(32) - 0.125, 0.5));
  near(ln.mean, 32, 0.3, "log-normal mean exp(mu + sigma²/2)");
});

test("Poisson: mean = variance = lambda, small and large rates", () => {
  const r = new Rng(3);
  for (const lambda of [0.5, 4, 29, 33, 120]) {
    const m = moments(() => r.poisson(lambda));
    near(m.mean, lambda, 0.02 * lambda + 0.02, `poisson(${lambda}) mean`);
    near(m.variance, lambda, 0.04 * lambda + 0.03, `poisson(${lambda}) variance`);
  }
  assert.equal(r.poisson(0), 0);
});

test("logGamma matches log((n-1)!)", () => {
  let f = 0;
  for (let n = 1; n < 30; n++) {
    near(logGamma(n), f, 1e-9, `logGamma(${n})`);
    f += Math.log(n);
  }
});

test("same seed, same stream; saved state resumes exactly", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 10 }, () => a.normal());
  assert.deepEqual(
    xs,
    Array.from({ length: 10 }, () => b.normal()),
  );
  a.normal(); // leaves a Box-Muller spare behind
  const saved = a.getState();
  const cont = Array.from({ length: 5 }, () => a.normal());
  const c = new Rng(0);
  c.setState(saved);
  assert.deepEqual(
    Array.from({ length: 5 }, () => c.normal()),
    cont,
  );
  assert.notDeepEqual(new Rng(1).uniform(), new Rng(2).uniform());
});
