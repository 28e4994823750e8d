/**
 * Principal component analysis, deterministic, in float64 (sklearn.PCA's role in the reference
 * notebook). X is M rows (samples) of C values, centred on the column mean μ.
 *
 *   cov = Xcᵀ Xc / (M − 1),  cov v_j = λ_j v_j,  λ_1 ≥ λ_2 ≥ …,  project(x) = V (x − μ)
 *
 * The eigenproblem is solved on the smaller of cov (C × C) and the Gram matrix Xc Xcᵀ (M × M) by
 * cyclic Jacobi; when both exceed `denseLimit`, by subspace (block power) iteration with a
 * Rayleigh–Ritz step. Signs are fixed: each component's largest-magnitude entry is positive
 * (the first one on ties), so a fit is reproducible bit for bit and across methods up to rounding.
 */
import { Rng } from "../tensor/random.ts";

export interface Pca {
  mean: Float64Array; // (C)
  components: Float64Array[]; // k unit vectors (C), by decreasing variance
  variance: number[]; // λ_j, the variance along each component
  varianceRatio: number[]; // λ_j / total variance
}

export interface PcaOptions {
  /** Dense Jacobi when min(C, M) ≤ this; otherwise subspace iteration. Default 400. */
  denseLimit?: number;
  /** Subspace iteration: maximum iterations (default 300) and subspace tolerance (1e-10). */
  maxIter?: number;
  tol?: number;
}

/** Fit k components to `rows` (M rows, each C values). k is capped at min(C, M). */
export function fitPca(rows: readonly ArrayLike<number>[], k: number, o: PcaOptions = {}): Pca {
  const M = rows.length;
  if (M === 0) throw new Error("fitPca: no rows");
  const C = rows[0].length;
  const mean = new Float64Array(C);
  for (const r of rows) for (let c = 0; c < C; c++) mean[c] += r[c] / M;
  const X = rows.map((r) => Float64Array.from({ length: C }, (_, c) => r[c] - mean[c]));
  let total = 0;
  for (const x of X) for (let c = 0; c < C; c++) total += x[c] * x[c];
  total /= Math.max(1, M - 1);
  const kk = Math.min(k, C, M);
  const limit = o.denseLimit ?? 400;
  const { values, vectors } =
    C <= limit || M <= limit
      ? C <= M
        ? covarianceEig(X, C)
        : gramEig(X, C)
      : subspaceEig(X, C, kk, o.maxIter ?? 300, o.tol ?? 1e-10);
  const components = vectors.slice(0, kk).map(fixSign);
  const variance = values.slice(0, kk).map((v) => Math.max(0, v));
  const varianceRatio = variance.map((v) => (total > 0 ? v / total : 0));
  return { mean, components, variance, varianceRatio };
}

/** Coordinates of x along each component: V (x − μ). */
export function project(pca: Pca, x: ArrayLike<number>): number[] {
  return pca.components.map((v) => {
    let s = 0;
    for (let c = 0; c < v.length; c++) s += v[c] * (x[c] - pca.mean[c]);
    return s;
  });
}

interface Eig {
  values: number[]; // descending
  vectors: Float64Array[]; // unit, (C) each
}

/** Eigen-decomposition of cov = Xᵀ X / (M − 1), C × C. */
function covarianceEig(X: Float64Array[], C: number): Eig {
  const A = new Float64Array(C * C);
  const d = Math.max(1, X.length - 1);
  for (const x of X) {
    for (let i = 0; i < C; i++) {
      const xi = x[i] / d;
      if (xi === 0) continue;
      for (let j = i; j < C; j++) A[i * C + j] += xi * x[j];
    }
  }
  for (let i = 0; i < C; i++) for (let j = 0; j < i; j++) A[i * C + j] = A[j * C + i];
  return jacobiEig(A, C);
}

/** Via the Gram matrix G = X Xᵀ / (M − 1): G u = λ u  ⇒  v = Xᵀ u / ‖Xᵀ u‖. */
function gramEig(X: Float64Array[], C: number): Eig {
  const M = X.length;
  const G = new Float64Array(M * M);
  const d = Math.max(1, M - 1);
  for (let i = 0; i < M; i++) {
    for (let j = i; j < M; j++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += X[i][c] * X[j][c];
      G[i * M + j] = G[j * M + i] = s / d;
    }
  }
  const { values, vectors: us } = jacobiEig(G, M);
  const vectors = us.map((u) => normalize(xtTimes(X, u, C)));
  return { values, vectors };
}

/** Top-k eigenpairs of Xᵀ X / (M − 1) by orthogonal iteration on k + 4 vectors, then Ritz. */
function subspaceEig(X: Float64Array[], C: number, k: number, maxIter: number, tol: number): Eig {
  const q = Math.min(C, X.length, k + 4);
  const rng = new Rng(0x5eed);
  let Q: Float64Array[] = Array.from({ length: q }, () =>
    Float64Array.from({ length: C }, () => rng.normal()),
  );
  orthonormalize(Q);
  const apply = (v: Float64Array): Float64Array => {
    const xv = X.map((x) => dotF(x, v));
    const out = xtTimes(X, xv, C);
    for (let c = 0; c < C; c++) out[c] /= Math.max(1, X.length - 1);
    return out;
  };
  for (let it = 0; it < maxIter; it++) {
    const Z = Q.map(apply);
    orthonormalize(Z);
    // change of the leading k-dim subspace: 1 − min_j ‖P_Q z_j‖
    let change = 0;
    for (let j = 0; j < k; j++) {
      let proj = 0;
      for (const v of Q) proj += dotF(v, Z[j]) ** 2;
      change = Math.max(change, 1 - Math.sqrt(proj));
    }
    Q = Z;
    if (change < tol) break;
  }
  // Rayleigh–Ritz: B = Qᵀ A Q (q × q), rotate Q by B's eigenvectors
  const AQ = Q.map(apply);
  const B = new Float64Array(q * q);
  for (let i = 0; i < q; i++) for (let j = 0; j < q; j++) B[i * q + j] = dotF(Q[i], AQ[j]);
  for (let i = 0; i < q; i++) for (let j = 0; j < i; j++) B[i * q + j] = B[j * q + i];
  const small = jacobiEig(B, q);
  const vectors = small.vectors.map((w) => {
    const v = new Float64Array(C);
    w.forEach((wj, j) => {
      for (let c = 0; c < C; c++) v[c] += wj * Q[j][c];
    });
    return normalize(v);
  });
  return { values: small.values, vectors };
}

/**
 * Cyclic Jacobi for a symmetric n × n matrix A (row-major, overwritten). Eigenvalues descending;
 * eigenvectors as unit rows.
 */
export function jacobiEig(A: Float64Array, n: number): Eig {
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += A[i * n + i] ** 2;
      for (let j = i + 1; j < n; j++) off += A[i * n + j] ** 2;
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < n; p++) {
      for (let r = p + 1; r < n; r++) {
        const apr = A[p * n + r];
        if (apr === 0) continue;
        const theta = (A[r * n + r] - A[p * n + p]) / (2 * apr);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        rotate(A, V, n, p, r, 1 / Math.sqrt(t * t + 1), t);
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => A[b * n + b] - A[a * n + a] || a - b,
  );
  return {
    values: order.map((i) => A[i * n + i]),
    vectors: order.map((i) => Float64Array.from({ length: n }, (_, r) => V[r * n + i])),
  };
}

/** Apply the Jacobi rotation (p, r) with cos c and tan t to A (both sides) and V (right). */
function rotate(
  A: Float64Array,
  V: Float64Array,
  n: number,
  p: number,
  r: number,
  c: number,
  t: number,
): void {
  const s = t * c;
  const tau = s / (1 + c);
  const apr = A[p * n + r];
  A[p * n + p] -= t * apr;
  A[r * n + r] += t * apr;
  A[p * n + r] = A[r * n + p] = 0;
  for (let k = 0; k < n; k++) {
    if (k !== p && k !== r) {
      const akp = A[k * n + p];
      const akr = A[k * n + r];
      A[k * n + p] = A[p * n + k] = akp - s * (akr + tau * akp);
      A[k * n + r] = A[r * n + k] = akr + s * (akp - tau * akr);
    }
    const vkp = V[k * n + p];
    const vkr = V[k * n + r];
    V[k * n + p] = vkp - s * (vkr + tau * vkp);
    V[k * n + r] = vkr + s * (vkp - tau * vkr);
  }
}

function dotF(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Xᵀ u: (C). */
function xtTimes(X: Float64Array[], u: ArrayLike<number>, C: number): Float64Array {
  const out = new Float64Array(C);
  X.forEach((x, m) => {
    const w = u[m];
    if (w !== 0) for (let c = 0; c < C; c++) out[c] += w * x[c];
  });
  return out;
}

function normalize(v: Float64Array): Float64Array {
  const n = Math.sqrt(dotF(v, v));
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

/** Modified Gram–Schmidt in place (twice, for float64 stability). */
function orthonormalize(Q: Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) {
    Q.forEach((v, j) => {
      for (let i = 0; i < j; i++) {
        const d = dotF(Q[i], v);
        for (let c = 0; c < v.length; c++) v[c] -= d * Q[i][c];
      }
      normalize(v);
    });
  }
}

/** Make the largest-magnitude entry positive (the first one on ties). */
export function fixSign(v: Float64Array): Float64Array {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[best]) + 1e-12) best = i;
  if (v[best] < 0) for (let i = 0; i < v.length; i++) v[i] = -v[i];
  return v;
}
