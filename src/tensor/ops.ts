/**
 * Differentiable ops. Each op computes its forward with the active backend and, right beside it,
 * the closure that accumulates its inputs' gradients (micrograd: one op = one screen).
 *
 * Shape letters: R = rows (all leading dims flattened), C = last dim, B = batch, T = positions,
 * H = heads, D = head dim, V = vocab.
 */
import type { AttentionShape } from "../backend/backend.ts";
import { backend } from "../backend/select.ts";
import { type Shape, type Tensor, alloc, gradOf, gradSlot, numel, result } from "./tensor.ts";

const last = (t: Tensor): number => t.shape[t.shape.length - 1];

function assertSameShape(a: Tensor, b: Tensor, op: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] differ`);
  }
}

/** a + b, same shapes. */
export function add(a: Tensor, b: Tensor): Tensor {
  assertSameShape(a, b, "add");
  const data = alloc(a.size);
  backend().addRows(data, a.data, b.data, null, { rows: 1, width: a.size, accumulate: false });
  const out = result(data, a.shape, [a, b], () => {
    const g = out.grad;
    if (g === null) return;
    if (a.requiresGrad) passGrad(a, g);
    if (b.requiresGrad) passGrad(b, g);
  });
  return out;
}

/** a ⊙ b, same shapes. */
export function mul(a: Tensor, b: Tensor): Tensor {
  assertSameShape(a, b, "mul");
  const data = alloc(a.size);
  for (let i = 0; i < data.length; i++) data[i] = a.data[i] * b.data[i];
  const out = result(data, a.shape, [a, b], () => {
    const g = out.grad;
    if (g === null) return;
    if (a.requiresGrad) addProduct(gradOf(a), g, b.data);
    if (b.requiresGrad) addProduct(gradOf(b), g, a.data);
  });
  return out;
}

/** x (R, N) + bias (N), the bias broadcast over rows. */
export function addBias(x: Tensor, bias: Tensor): Tensor {
  const n = bias.size;
  if (x.size % n !== 0) throw new Error(`addBias: ${n} does not divide ${x.size}`);
  const data = alloc(x.size);
  for (let i = 0; i < data.length; i++) data[i] = x.data[i] + bias.data[i % n];
  const out = result(data, x.shape, [x, bias], () => {
    const g = out.grad;
    if (g === null) return;
    if (x.requiresGrad) passGrad(x, g);
    if (bias.requiresGrad) {
      const gb = gradOf(bias);
      for (let i = 0; i < g.length; i++) gb[i % n] += g[i];
    }
  });
  return out;
}

/** x · s for a constant s. */
export function scale(x: Tensor, s: number): Tensor {
  const data = alloc(x.size);
  for (let i = 0; i < data.length; i++) data[i] = x.data[i] * s;
  const out = result(data, x.shape, [x], () => {
    const g = out.grad;
    if (g === null) return;
    const gx = gradOf(x);
    for (let i = 0; i < g.length; i++) gx[i] += g[i] * s;
  });
  return out;
}

/** x (R, …) with row r times the constant `factors[r]` (R). */
export function scaleRows(x: Tensor, factors: Float32Array): Tensor {
  const n = x.size / factors.length; // values per row
  const data = alloc(x.size);
  for (let i = 0; i < data.length; i++) data[i] = x.data[i] * factors[Math.floor(i / n)];
  const out = result(data, x.shape, [x], () => {
    const g = out.grad;
    if (g === null) return;
    const gx = gradOf(x);
    for (let i = 0; i < g.length; i++) gx[i] += g[i] * factors[Math.floor(i / n)];
  });
  return out;
}

/** The same values under another shape (a view: the data buffer is shared). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  if (numel(shape) !== x.size) {
    throw new Error(`reshape: [${x.shape.join(", ")}] cannot become [${shape.join(", ")}]`);
  }
  const out = result(x.data, shape, [x], () => {
    if (out.grad !== null) passGrad(x, out.grad);
  });
  return out;
}

/** A contiguous flat range [offset, offset + numel(shape)) of x, as a tensor of `shape`. */
export function narrow(x: Tensor, offset: number, shape: Shape): Tensor {
  const n = numel(shape);
  const out = result(x.data.slice(offset, offset + n), shape, [x], () => {
    const g = out.grad;
    if (g === null) return;
    const gx = gradOf(x);
    for (let i = 0; i < n; i++) gx[offset + i] += g[i];
  });
  return out;
}

/** y (R, out) = x (R, in) · wᵀ, w (out, in): PyTorch's Linear without bias. */
export function linear(x: Tensor, w: Tensor): Tensor {
  const [nOut, nIn] = w.shape;
  if (last(x) !== nIn)
    throw new Error(`linear: input width ${last(x)} != weight in-features ${nIn}`);
  const R = x.size / nIn;
  const data = alloc(R * nOut);
  const be = backend();
  be.gemm(data, x.data, w.data, {
    m: R,
    n: nOut,
    k: nIn,
    transA: false,
    transB: true,
    accumulate: false,
  });
  const out = result(data, [...x.shape.slice(0, -1), nOut], [x, w], () => {
    const g = out.grad; // (R, out)
    if (g === null) return;
    // dx (R, in) += g · w ; dw (out, in) += gᵀ · x
    // (a fresh gradient buffer is written, not accumulated into: no zero-fill)
    if (x.requiresGrad) {
      const { g: dx, fresh } = gradSlot(x);
      be.gemm(dx, g, w.data, {
        m: R,
        n: nIn,
        k: nOut,
        transA: false,
        transB: false,
        accumulate: !fresh,
      });
    }
    if (w.requiresGrad) {
      const { g: dw, fresh } = gradSlot(w);
      be.gemm(dw, g, x.data, {
        m: nOut,
        n: nIn,
        k: R,
        transA: true,
        transB: false,
        accumulate: !fresh,
      });
    }
  });
  return out;
}

/** out (…, C) = w[ids] · s: the token embedding, scaled (Huginn multiplies by sqrt(C)). */
export function embedding(w: Tensor, ids: Int32Array, shape: Shape, s: number): Tensor {
  const [V, C] = w.shape;
  const data = alloc(ids.length * C);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (!(id >= 0 && id < V))
      throw new Error(`embedding: token id ${id} outside the vocabulary [0, ${V})`);
    for (let c = 0; c < C; c++) data[r * C + c] = w.data[id * C + c] * s;
  }
  const out = result(data, [...shape, C], [w], () => {
    const g = out.grad;
    if (g === null) return;
    const gw = gradOf(w);
    for (let r = 0; r < ids.length; r++) {
      for (let c = 0; c < C; c++) gw[ids[r] * C + c] += g[r * C + c] * s;
    }
  });
  return out;
}

/** RMSNorm over the last dim: x · rsqrt(mean(x²) + eps) · w. */
export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const C = w.size;
  const rows = x.size / C;
  const data = alloc(x.size);
  const rstd = alloc(rows);
  const be = backend();
  be.rmsNormForward(data, rstd, x.data, w.data, rows, C, eps);
  const out = result(
    data,
    x.shape,
    [x, w],
    () => {
      if (out.grad === null) return;
      // the kernel writes both gradients: give it a scratch buffer for the one not needed
      const dx = x.requiresGrad ? gradOf(x) : new Float32Array(x.size);
      const dw = w.requiresGrad ? gradOf(w) : new Float32Array(C);
      be.rmsNormBackward(dx, dw, out.grad, x.data, w.data, rstd, rows, C);
    },
    [rstd],
  );
  return out;
}

/**
 * Rotary position embedding on (B, T, H, D), interleaved pairs, angles from the given tables.
 * `positions` is (T), shared by the batch, or (B, T), one row of positions per batch row
 * (left-padded batches whose rows start at different offsets).
 */
export function rope(
  x: Tensor,
  positions: Int32Array,
  cos: Float32Array,
  sin: Float32Array,
): Tensor {
  const [B, T, H, D] = x.shape;
  if (positions.length !== T && positions.length !== B * T)
    throw new Error(`rope: ${positions.length} positions for ${T} tokens`);
  const be = backend();
  const rotate = (out: Float32Array, src: Float32Array, inverse: boolean): void => {
    if (positions.length === T) {
      be.rope(out, src, cos, sin, positions, B, H, D, inverse);
      return;
    }
    const n = T * H * D; // one batch row
    for (let b = 0; b < B; b++) {
      const row = positions.subarray(b * T, (b + 1) * T);
      const [o, x] = [out.subarray(b * n, (b + 1) * n), src.subarray(b * n, (b + 1) * n)];
      be.rope(o, x, cos, sin, row, 1, H, D, inverse);
    }
  };
  const data = alloc(x.size);
  rotate(data, x.data, false);
  const out = result(data, x.shape, [x], () => {
    if (out.grad === null) return;
    // a rotation's transpose is the inverse rotation
    const { g: gx, fresh } = gradSlot(x);
    if (fresh) {
      rotate(gx, out.grad, true);
      return;
    }
    const back = new Float32Array(x.size);
    rotate(back, out.grad, true);
    addInto(gx, back);
  });
  return out;
}

/** Rotary tables and per-token positions for `headsOf` (as `rope` takes them). */
export interface RopeArgs {
  positions: Int32Array; // (T) or (B, T)
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * One third of a fused projection, as heads: qkv (B, T, 3C) -> (B, T, H, D) holding columns
 * [part·C, (part+1)·C) of each row, plus `bias` (C) when given, then rotated when `rot` is
 * given. Equals rope(reshape(addBias(sliceLast(qkv, part·C, C), bias))) in one op: one
 * activation instead of four, and a third of the passes (attention's q, k and v).
 */
export function headsOf(
  qkv: Tensor,
  part: number,
  heads: number,
  bias: Tensor | null,
  rot: RopeArgs | null,
): Tensor {
  const [B, T, C3] = qkv.shape;
  const C = C3 / 3;
  const shape = [B, T, heads, C / heads];
  const data = alloc(B * T * C);
  copyColumns(data, qkv.data, B * T, C3, part * C, C, bias?.data ?? null);
  if (rot) rotateInPlace(data, shape, rot, false);
  const parents = bias ? [qkv, bias] : [qkv];
  const out = result(data, shape, parents, () => {
    if (out.grad === null) return;
    let g = out.grad;
    if (rot) {
      g = g.slice(); // a rotation's transpose is the inverse rotation
      rotateInPlace(g, shape, rot, true);
    }
    if (qkv.requiresGrad) addToColumns(gradOf(qkv), g, B * T, C3, part * C, C);
    if (bias?.requiresGrad === true) addColumnSums(gradOf(bias), g, B * T, C);
  });
  return out;
}

/** dst (R, C) = src[:, start : start + C] of src (R, c) (+ bias (C)). */
function copyColumns(
  dst: Float32Array,
  src: Float32Array,
  rows: number,
  c: number,
  start: number,
  width: number,
  bias: Float32Array | null,
): void {
  const s = { rows, width, aStride: c, accumulate: false };
  backend().addRows(dst, src.subarray(start), null, bias, s);
}

/** dst[:, start : start + width] of dst (rows, c) += src (rows, width). */
function addToColumns(
  dst: Float32Array,
  src: Float32Array,
  rows: number,
  c: number,
  start: number,
  width: number,
): void {
  const s = { rows, width, dstStride: c, accumulate: true };
  backend().addRows(dst.subarray(start), src, null, null, s);
}

/** dst (width) += Σ_rows src (rows, width), as the GEMM 1ᵀ · src (one pass, on the backend). */
function addColumnSums(dst: Float32Array, src: Float32Array, rows: number, width: number): void {
  const ones = onesOf(rows);
  const s = { m: 1, n: width, k: rows, transA: false, transB: false, accumulate: true };
  backend().gemm(dst, ones, src, s);
}

let onesCache = new Float32Array(0);

/** A vector of n ones (shared, read-only). */
function onesOf(n: number): Float32Array {
  if (onesCache.length < n) onesCache = new Float32Array(n).fill(1);
  return onesCache.subarray(0, n);
}

/** x (B, T, H, D) rotated in place (the kernel allows out = x); positions (T) or (B, T). */
function rotateInPlace(x: Float32Array, shape: Shape, rot: RopeArgs, inverse: boolean): void {
  const [B, T, H, D] = shape;
  const be = backend();
  if (rot.positions.length === T) {
    be.rope(x, x, rot.cos, rot.sin, rot.positions, B, H, D, inverse);
    return;
  }
  const n = T * H * D; // one batch row, with its own positions
  for (let b = 0; b < B; b++) {
    const row = x.subarray(b * n, (b + 1) * n);
    const pos = rot.positions.subarray(b * T, (b + 1) * T);
    be.rope(row, row, rot.cos, rot.sin, pos, 1, H, D, inverse);
  }
}

/** Softmax attention; q (B, Tq, H, D), k and v (B, Tk, H, D); masking as in AttentionShape. */
export function attention(q: Tensor, k: Tensor, v: Tensor, s: AttentionShape): Tensor {
  const be = backend();
  const data = alloc(q.size);
  const probs = alloc(s.batch * s.heads * s.tq * s.tk);
  be.attentionForward(data, probs, q.data, k.data, v.data, s);
  const out = result(
    data,
    q.shape,
    [q, k, v],
    () => {
      if (out.grad === null) return;
      const grads = [q, k, v].map((t) => (t.requiresGrad ? gradOf(t) : new Float32Array(t.size)));
      be.attentionBackward(
        grads[0],
        grads[1],
        grads[2],
        out.grad,
        probs,
        q.data,
        k.data,
        v.data,
        s,
      );
    },
    [probs],
  );
  return out;
}

/** SwiGLU on gu (R, 2N) = [gate | up]: silu(gate) · up, (R, N). */
export function swiglu(gu: Tensor): Tensor {
  const N = last(gu) / 2;
  const rows = gu.size / (2 * N);
  const be = backend();
  const data = alloc(rows * N);
  be.swigluForward(data, gu.data, rows, N);
  const out = result(data, [...gu.shape.slice(0, -1), N], [gu], () => {
    if (out.grad !== null) be.swigluBackward(gradOf(gu), out.grad, gu.data, rows, N);
  });
  return out;
}

/** [a | b] along the last dim. */
export function concatLast(a: Tensor, b: Tensor): Tensor {
  const ca = last(a);
  const cb = last(b);
  const rows = a.size / ca;
  if (b.size / cb !== rows) throw new Error("concatLast: row counts differ");
  const c = ca + cb;
  const data = alloc(rows * c);
  const be = backend();
  be.addRows(data, a.data, null, null, { rows, width: ca, dstStride: c, accumulate: false });
  be.addRows(data.subarray(ca), b.data, null, null, {
    rows,
    width: cb,
    dstStride: c,
    accumulate: false,
  });
  const out = result(data, [...a.shape.slice(0, -1), c], [a, b], () => {
    const g = out.grad;
    if (g === null) return;
    if (a.requiresGrad) addColumns(gradOf(a), g, rows, c, 0, ca);
    if (b.requiresGrad) addColumns(gradOf(b), g, rows, c, ca, cb);
  });
  return out;
}

/** Columns [start, start + width) of the last dim. */
export function sliceLast(x: Tensor, start: number, width: number): Tensor {
  const c = last(x);
  const rows = x.size / c;
  const data = alloc(rows * width);
  copyColumns(data, x.data, rows, c, start, width, null);
  const out = result(data, [...x.shape.slice(0, -1), width], [x], () => {
    if (out.grad !== null) addToColumns(gradOf(x), out.grad, rows, c, start, width);
  });
  return out;
}

/** Mean softmax cross-entropy over the rows whose label is not ignored (label < 0, e.g. -100). */
export function crossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  const V = last(logits);
  const rows = logits.size / V;
  if (labels.length !== rows)
    throw new Error(`crossEntropy: ${labels.length} labels for ${rows} rows`);
  for (const l of labels) {
    if (l >= V) throw new Error(`crossEntropy: label ${l} outside the vocabulary [0, ${V})`);
  }
  const losses = new Float32Array(rows);
  const dlogits = new Float32Array(logits.size);
  backend().crossEntropy(losses, dlogits, logits.data, labels, rows, V);
  let count = 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    if (labels[r] < 0) continue;
    count++;
    total += losses[r];
  }
  const mean = count > 0 ? total / count : Number.NaN; // torch: NaN when every label is ignored
  const out = result(Float32Array.of(mean), [], [logits], () => {
    if (out.grad === null || count === 0) return;
    const s = out.grad[0] / count;
    const gl = gradOf(logits);
    for (let i = 0; i < gl.length; i++) gl[i] += dlogits[i] * s;
  });
  return out;
}

/** Σ x (a scalar). */
export function sum(x: Tensor): Tensor {
  let total = 0;
  for (const v of x.data) total += v;
  const out = result(Float32Array.of(total), [], [x], () => {
    if (out.grad === null) return;
    const gx = gradOf(x);
    for (let i = 0; i < gx.length; i++) gx[i] += out.grad[0];
  });
  return out;
}

/** dst += x ⊙ y */
function addProduct(dst: Float32Array, x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) dst[i] += x[i] * y[i];
}

/** t.grad += g, or t.grad = g (a copy) when t has no gradient yet. */
function passGrad(t: Tensor, g: Float32Array): void {
  const { g: dst, fresh } = gradSlot(t);
  if (fresh) dst.set(g);
  else addInto(dst, g);
}

function addInto(dst: Float32Array, src: Float32Array): void {
  backend().addRows(dst, src, null, null, { rows: 1, width: src.length, accumulate: true });
}

/** dst (rows, width) += src[:, start : start + width] of src (rows, c). */
function addColumns(
  dst: Float32Array,
  src: Float32Array,
  rows: number,
  c: number,
  start: number,
  width: number,
): void {
  const s = { rows, width, aStride: c, accumulate: true };
  backend().addRows(dst, src.subarray(start), null, null, s);
}
