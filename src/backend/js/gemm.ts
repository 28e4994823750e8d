// GEMM in plain TypeScript. `gemmNaive` is the spec: a triple loop straight from the definition.
// `gemm` packs op(A) into 4-row panels and op(B) into 4-column panels (transposes handled while
// packing) and computes each 4x4 block of C in 16 locals that V8 keeps in registers: about 4x
// the naive loop. Results equal the spec up to float summation order.
import type { GemmShape } from "../backend.ts";

/** The definition: C[i,j] (+)= Σ_p op(A)[i,p] · op(B)[p,j]. */
export function gemmNaive(c: Float32Array, a: Float32Array, b: Float32Array, s: GemmShape): void {
  const { m, n, k, transA, transB, accumulate } = s;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bv = transB ? b[j * k + p] : b[p * n + j];
        sum += av * bv;
      }
      c[i * n + j] = accumulate ? c[i * n + j] + sum : sum;
    }
  }
}

const R = 4; // rows and columns of the register block

export function gemm(c: Float32Array, a: Float32Array, b: Float32Array, s: GemmShape): void {
  if (s.m < R) {
    gemmNaive(c, a, b, s); // a matrix-vector product: packing would cost as much as it saves
    return;
  }
  const bPanels = packB(b, s);
  const aPanel = new Float32Array(R * s.k);
  for (let i0 = 0; i0 < s.m; i0 += R) {
    packA(aPanel, a, s, i0);
    for (let j0 = 0; j0 < s.n; j0 += R) block(c, aPanel, bPanels, s, i0, j0);
  }
}

/** op(B) as ceil(n/4) panels of (k, 4), zero-padded past column n. */
function packB(b: Float32Array, s: GemmShape): Float32Array {
  const { n, k, transB } = s;
  const panels = new Float32Array(Math.ceil(n / R) * R * k);
  for (let j = 0; j < n; j++) {
    const base = Math.floor(j / R) * R * k + (j % R);
    for (let p = 0; p < k; p++) panels[base + p * R] = transB ? b[j * k + p] : b[p * n + j];
  }
  return panels;
}

/** Rows i0 … i0+3 of op(A) as one (k, 4) panel, zero-padded past row m. */
function packA(panel: Float32Array, a: Float32Array, s: GemmShape, i0: number): void {
  const { m, k, transA } = s;
  for (let r = 0; r < R; r++) {
    const i = i0 + r;
    for (let p = 0; p < k; p++) {
      panel[p * R + r] = i < m ? (transA ? a[p * m + i] : a[i * k + p]) : 0;
    }
  }
}

/** C[i0:i0+4, j0:j0+4] (+)= the 4x4 product of one A panel and one B panel. */
function block(
  c: Float32Array,
  ap: Float32Array,
  bp: Float32Array,
  s: GemmShape,
  i0: number,
  j0: number,
): void {
  const k = s.k;
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0,
    c10 = 0,
    c11 = 0,
    c12 = 0,
    c13 = 0;
  let c20 = 0,
    c21 = 0,
    c22 = 0,
    c23 = 0,
    c30 = 0,
    c31 = 0,
    c32 = 0,
    c33 = 0;
  let bo = (j0 / R) * R * k;
  for (let ao = 0; ao < R * k; ao += R, bo += R) {
    const a0 = ap[ao],
      a1 = ap[ao + 1],
      a2 = ap[ao + 2],
      a3 = ap[ao + 3];
    const b0 = bp[bo],
      b1 = bp[bo + 1],
      b2 = bp[bo + 2],
      b3 = bp[bo + 3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
  }
  store(c, s, i0, j0, 0, c00, c01, c02, c03);
  store(c, s, i0, j0, 1, c10, c11, c12, c13);
  store(c, s, i0, j0, 2, c20, c21, c22, c23);
  store(c, s, i0, j0, 3, c30, c31, c32, c33);
}

/** Row i0 + r, columns j0 … j0+3 of C (clipped to the matrix). */
function store(
  c: Float32Array,
  s: GemmShape,
  i0: number,
  j0: number,
  r: number,
  ...v: number[]
): void {
  if (i0 + r >= s.m) return;
  const row = (i0 + r) * s.n;
  for (let q = 0; q < R && j0 + q < s.n; q++) {
    c[row + j0 + q] = s.accumulate ? c[row + j0 + q] + v[q] : v[q];
  }
}
