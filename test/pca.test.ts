// PCA against known answers: a rotated Gaussian cloud with variances 9, 4, 1 (and tiny noise).
import assert from "node:assert/strict";
import { test } from "node:test";
import { fitPca, jacobiEig, project } from "../src/analysis/pca.ts";
import { Rng } from "../src/tensor/random.ts";

/** A random orthonormal basis of R^C (Gram–Schmidt on Gaussian vectors). */
function basis(C: number, rng: Rng, first: Float64Array[] = []): Float64Array[] {
  const Q: Float64Array[] = first.map((v) => v.map((x) => x / Math.hypot(...v)));
  while (Q.length < C) {
    const v = Float64Array.from({ length: C }, () => rng.normal());
    for (const q of Q) {
      const d = q.reduce((a, x, i) => a + x * v[i], 0);
      q.forEach((x, i) => (v[i] -= d * x));
    }
    const n = Math.hypot(...v);
    Q.push(v.map((x) => x / n));
  }
  return Q;
}

/** M samples: mean + Σ_j sqrt(var_j)·g·axis_j, with exactly whitened coefficients. */
function cloud(C: number, M: number, variances: number[], rng: Rng) {
  const axes = basis(C, rng);
  const mean = Float64Array.from({ length: C }, () => 3 * rng.normal());
  // coefficients: zero-mean orthonormal columns (orthogonal to 1), so the answer is exact
  const cols = basis(M, rng, [new Float64Array(M).fill(1)]).slice(1, variances.length + 1);
  const rows = Array.from({ length: M }, (_, m) => {
    const x = Float64Array.from(mean);
    variances.forEach((v, j) => {
      const coef = cols[j][m] * Math.sqrt(v * (M - 1));
      for (let c = 0; c < C; c++) x[c] += coef * axes[j][c];
    });
    return x;
  });
  return { rows, axes, mean };
}

const align = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return Math.abs(s);
};

for (const [label, C, M, denseLimit] of [
  ["covariance (C < M)", 8, 40, 400],
  ["Gram (M < C)", 30, 12, 400],
  ["subspace iteration", 30, 40, 4],
] as const) {
  test(`pca ${label}: recovers variances 9, 4, 1 and their axes`, () => {
    const { rows, axes, mean } = cloud(C, M, [9, 4, 1], new Rng(7));
    const p = fitPca(rows, 3, { denseLimit });
    p.variance.forEach((v, j) => {
      assert.ok(Math.abs(v - [9, 4, 1][j]) < 1e-8, `λ${j} = ${v}`);
    });
    p.components.forEach((v, j) => {
      assert.ok(align(v, axes[j]) > 1 - 1e-9, `axis ${j}`);
    });
    p.varianceRatio.forEach((r, j) => {
      assert.ok(Math.abs(r - [9, 4, 1][j] / 14) < 1e-9);
    });
    for (let c = 0; c < C; c++) assert.ok(Math.abs(p.mean[c] - mean[c]) < 1e-9);
    // sign rule: the largest-magnitude entry of each component is positive
    for (const v of p.components) {
      const big = v.reduce((b, x, i) => (Math.abs(x) > Math.abs(v[b]) + 1e-12 ? i : b), 0);
      assert.ok(v[big] > 0);
    }
    // projections of the mean are 0; of mean + 2·axis_0 are (2, 0, 0) up to sign
    assert.ok(project(p, mean).every((x) => Math.abs(x) < 1e-9));
    const x = Float64Array.from(mean, (m, c) => m + 2 * axes[0][c]);
    const y = project(p, x);
    assert.ok(Math.abs(Math.abs(y[0]) - 2) < 1e-9 && Math.abs(y[1]) < 1e-9);
  });
}

test("pca is deterministic and the methods agree (same signs)", () => {
  const { rows } = cloud(30, 40, [5, 3, 2, 1], new Rng(3));
  const a = fitPca(rows, 4);
  const b = fitPca(rows, 4);
  const c = fitPca(rows, 4, { denseLimit: 2 });
  assert.deepEqual(a, b);
  a.components.forEach((v, j) => {
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i] * c.components[j][i];
    assert.ok(s > 1 - 1e-8, `component ${j}: ${s}`);
  });
});

test("jacobiEig: a 2x2 with known eigenpairs", () => {
  // [[2, 1], [1, 2]]: λ = 3 along (1, 1)/√2, λ = 1 along (1, −1)/√2
  const { values, vectors } = jacobiEig(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(values[0] - 3) < 1e-12 && Math.abs(values[1] - 1) < 1e-12);
  assert.ok(Math.abs(Math.abs(vectors[0][0]) - Math.SQRT1_2) < 1e-12);
  assert.ok(Math.abs(vectors[0][0] - vectors[0][1]) < 1e-12);
});

test("pca caps k at min(C, M)", () => {
  const p = fitPca(
    [
      [1, 2],
      [3, 5],
      [0, 1],
    ],
    6,
  );
  assert.equal(p.components.length, 2);
});
