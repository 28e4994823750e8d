// Every differentiable op against central finite differences, computed in float64 on top of the
// float32 forward: d/dx Σ w ⊙ op(x) for random weights w, at random points.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ops from "../src/tensor/ops.ts";
import { Rng } from "../src/tensor/random.ts";
import { type Tensor, backward, detach, noGrad, parameter, tensor } from "../src/tensor/tensor.ts";
import { centralDifference } from "./helpers.ts";

const rng = new Rng(7);
const rand = (shape: number[], s = 1): Tensor =>
  parameter(rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, s), shape);

/**
 * Compare the tape gradient of L = Σ w·f(inputs) with central differences for every input
 * element. eps is large-ish because the forward is float32; the quotient is taken in float64.
 */
function gradcheck(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  tol = 2e-2,
): void {
  const out0 = noGrad(() => f(...inputs));
  const w = rng.fillNormal(new Float32Array(out0.size));
  const lossOf = (): number => {
    const out = noGrad(() => f(...inputs));
    let s = 0;
    for (let i = 0; i < out.size; i++) s += w[i] * out.data[i];
    return s;
  };
  for (const x of inputs) x.grad = null;
  const out = f(...inputs);
  backward(ops.sum(ops.mul(out, tensor(w, out.shape))));
  let worst = 0;
  for (const [xi, x] of inputs.entries()) {
    if (!x.requiresGrad) continue;
    const g = x.grad ?? new Float32Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const eps = 1e-2 * Math.max(1, Math.abs(x.data[i]));
      const numeric = centralDifference(x.data, i, eps, lossOf);
      const err = Math.abs(numeric - g[i]) / Math.max(1, Math.abs(numeric));
      worst = Math.max(worst, err);
      assert.ok(err <= tol, `${name}: input ${xi}[${i}] analytic ${g[i]} vs numeric ${numeric}`);
    }
  }
  console.log(`# gradcheck ${name}: worst relative error ${worst.toExponential(2)}`);
}

test("elementwise: add, mul, addBias, scale, reshape, narrow", () => {
  gradcheck("add", ops.add, [rand([3, 4]), rand([3, 4])]);
  gradcheck("addBias", ops.addBias, [rand([2, 3, 4]), rand([4])]);
  gradcheck("scale", (x) => ops.scale(x, -1.7), [rand([5])]);
  const factors = Float32Array.of(0, 2.5, -1);
  gradcheck("scaleRows", (x) => ops.scaleRows(x, factors), [rand([3, 2, 2])]);
  assert.deepEqual(
    Array.from(ops.scaleRows(tensor(Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]), factors).data),
    [0, 0, 7.5, 10, -5, -6],
  );
  gradcheck("mul", ops.mul, [rand([2, 3]), rand([2, 3])]);
  gradcheck("reshape", (x) => ops.reshape(x, [6, 2]), [rand([3, 4])]);
  gradcheck("narrow", (x) => ops.narrow(x, 3, [2, 2]), [rand([3, 4])]);
});

test("linear and embedding", () => {
  gradcheck("linear", ops.linear, [rand([2, 3, 5]), rand([4, 5])]);
  const ids = Int32Array.from([2, 0, 2, 1]);
  gradcheck("embedding", (w) => ops.embedding(w, ids, [2, 2], 3), [rand([4, 3])]);
});

test("rmsNorm", () => {
  gradcheck("rmsNorm", (x, w) => ops.rmsNorm(x, w, 1e-6), [rand([3, 8]), rand([8])]);
});

test("rope, forward and inverse", () => {
  const D = 8;
  const T = 3;
  const cos = new Float32Array((T * D) / 2);
  const sin = new Float32Array((T * D) / 2);
  for (let i = 0; i < cos.length; i++) {
    cos[i] = Math.cos(0.3 * i + 0.1);
    sin[i] = Math.sin(0.3 * i + 0.1);
  }
  const pos = Int32Array.from([2, 0, 1]);
  gradcheck("rope", (x) => ops.rope(x, pos, cos, sin), [rand([2, 3, 2, D])]);
  // a rotation keeps each pair's norm
  const x = rand([1, 3, 1, D]);
  const y = noGrad(() => ops.rope(x, pos, cos, sin));
  const norm = (a: Float32Array): number => Math.hypot(...a);
  assert.ok(Math.abs(norm(x.data) - norm(y.data)) < 1e-5);
});

test("headsOf: slice + bias + rope of a fused qkv, equal to the unfused ops", () => {
  const [B, T, H, D] = [2, 3, 2, 4];
  const C = H * D;
  const cos = Float32Array.from({ length: (T * D) / 2 }, (_, i) => Math.cos(0.3 * i + 0.1));
  const sin = Float32Array.from({ length: (T * D) / 2 }, (_, i) => Math.sin(0.3 * i + 0.1));
  const shared = { positions: Int32Array.from([2, 0, 1]), cos, sin };
  const perRow = { positions: Int32Array.from([0, 1, 2, 1, 2, 0]), cos, sin };
  for (const [part, rot] of [
    [0, shared],
    [1, perRow],
    [2, null],
  ] as const) {
    gradcheck(`headsOf part ${part}`, (qkv, b) => ops.headsOf(qkv, part, H, b, rot), [
      rand([B, T, 3 * C]),
      rand([C]),
    ]);
    const [qkv, b] = [rand([B, T, 3 * C]), rand([C])];
    const fused = noGrad(() => ops.headsOf(qkv, part, H, b, rot));
    const unfused = noGrad(() => {
      const x = ops.reshape(ops.addBias(ops.sliceLast(qkv, part * C, C), b), [B, T, H, D]);
      return rot ? ops.rope(x, rot.positions, cos, sin) : x;
    });
    assert.deepEqual(fused.shape, [B, T, H, D]);
    assert.deepEqual(Array.from(fused.data), Array.from(unfused.data));
  }
});

test("attention: causal, chunk after cache, gaps and padding", () => {
  const [B, H, D] = [2, 2, 4];
  const causal = { batch: B, heads: H, headDim: D, tq: 3, tk: 3 };
  gradcheck("attention causal", (q, k, v) => ops.attention(q, k, v, causal), [
    rand([B, 3, H, D]),
    rand([B, 3, H, D]),
    rand([B, 3, H, D]),
  ]);
  const chunk = {
    ...causal,
    tq: 2,
    tk: 5,
    keyMask: Uint8Array.from([1, 1, 1, 1, 1, 0, 1, 1, 1, 1]),
  };
  gradcheck("attention chunk+mask", (q, k, v) => ops.attention(q, k, v, chunk), [
    rand([B, 2, H, D]),
    rand([B, 5, H, D]),
    rand([B, 5, H, D]),
  ]);
  const gaps = {
    ...causal,
    tq: 2,
    tk: 3,
    qPos: Int32Array.from([4, 9]),
    kPos: Int32Array.from([0, 5, 9]),
  };
  gradcheck("attention positions", (q, k, v) => ops.attention(q, k, v, gaps), [
    rand([B, 2, H, D]),
    rand([B, 3, H, D]),
    rand([B, 3, H, D]),
  ]);
  const windowed = { ...causal, tq: 5, tk: 5, window: 2 };
  gradcheck("attention window", (q, k, v) => ops.attention(q, k, v, windowed), [
    rand([B, 5, H, D]),
    rand([B, 5, H, D]),
    rand([B, 5, H, D]),
  ]);
});

test("attention window: query i sees exactly keys i-w+1..i; a window >= T is plain causal", () => {
  const [B, H, D, T, w] = [1, 1, 4, 6, 2];
  const q = rand([B, T, H, D]);
  const k = rand([B, T, H, D]);
  const v = rand([B, T, H, D]);
  const s = { batch: B, heads: H, headDim: D, tq: T, tk: T, window: w };
  const before = noGrad(() => ops.attention(q, k, v, s)).data.slice();
  v.data.fill(100, 0, D); // change only key 0: visible to queries 0 and 1 alone
  const after = noGrad(() => ops.attention(q, k, v, s)).data;
  for (let i = 0; i < T; i++) {
    const row = (a: Float32Array) => Array.from(a.slice(i * D, (i + 1) * D));
    if (i < w) assert.notDeepEqual(row(after), row(before), `query ${i} sees key 0`);
    else assert.deepEqual(row(after), row(before), `query ${i} must not see key 0`);
  }
  const full = { ...s, window: 0 };
  const wide = { ...s, window: T };
  const [a, b] = noGrad(() => [ops.attention(q, k, v, full), ops.attention(q, k, v, wide)]);
  assert.deepEqual(Array.from(b.data), Array.from(a.data));
});

test("attention masks exactly: a query never sees a later key", () => {
  const [B, H, D, T] = [1, 1, 4, 4];
  const q = rand([B, T, H, D]);
  const k = rand([B, T, H, D]);
  const v = rand([B, T, H, D]);
  const s = { batch: B, heads: H, headDim: D, tq: T, tk: T };
  const before = noGrad(() => ops.attention(q, k, v, s)).data.slice();
  v.data.fill(100, 3 * D); // change only the last key's value
  const after = noGrad(() => ops.attention(q, k, v, s)).data;
  assert.deepEqual(Array.from(after.slice(0, 3 * D)), Array.from(before.slice(0, 3 * D)));
});

test("swiglu, concatLast, sliceLast", () => {
  gradcheck("swiglu", ops.swiglu, [rand([3, 8])]);
  gradcheck("concatLast", ops.concatLast, [rand([2, 3]), rand([2, 2])]);
  gradcheck("sliceLast", (x) => ops.sliceLast(x, 1, 2), [rand([3, 4])]);
});

test("crossEntropy with ignore index -100", () => {
  const labels = Int32Array.from([2, -100, 0]);
  gradcheck("crossEntropy", (x) => ops.crossEntropy(x, labels), [rand([3, 5])]);
  // hand value: uniform logits -> log V
  const uniform = ops.crossEntropy(tensor(new Float32Array(8), [2, 4]), Int32Array.from([1, 3]));
  assert.ok(Math.abs(uniform.data[0] - Math.log(4)) < 1e-6);
  const allIgnored = ops.crossEntropy(tensor(new Float32Array(4), [1, 4]), Int32Array.from([-100]));
  assert.ok(Number.isNaN(allIgnored.data[0]), "mean over no labels is NaN, as torch");
});

test("noGrad and detach cut the tape", () => {
  const x = rand([3]);
  const y = noGrad(() => ops.scale(x, 2));
  assert.equal(y.requiresGrad, false);
  const z = ops.add(detach(x), x);
  backward(ops.sum(z));
  assert.deepEqual(Array.from(x.grad ?? []), [1, 1, 1], "only the attached path contributes");
});

test("a tensor used twice accumulates both gradients", () => {
  const x = rand([4]);
  backward(ops.sum(ops.add(x, x)));
  assert.deepEqual(Array.from(x.grad ?? []), [2, 2, 2, 2]);
});

test("a window over places: query i sees the earlier keys less than w places from its own", () => {
  const [B, H, D, T, w] = [2, 1, 4, 6, 2];
  // row 0: two numbers "123+12" (places 1 2 3 0 1 2); row 1 one number, places 1-5 after a sign
  const places = Int32Array.from([1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4, 5]);
  const q = rand([B, T, H, D]);
  const k = rand([B, T, H, D]);
  const v = rand([B, T, H, D]);
  const s = { batch: B, heads: H, headDim: D, tq: T, tk: T, window: w };
  const counted = { ...s, qPlaces: places, kPlaces: places };
  const out = () => noGrad(() => ops.attention(q, k, v, counted)).data.slice();
  const seen = (b: number, i: number, j: number) =>
    j <= i && Math.abs(places[b * T + i] - places[b * T + j]) < w;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < T; j++) {
      const before = out();
      const row = b * T + j;
      const saved = v.data.slice(row * D, (row + 1) * D);
      v.data.fill(100, row * D, (row + 1) * D); // change key j of row b alone
      const after = out();
      v.data.set(saved, row * D);
      for (let i = 0; i < T; i++) {
        const at = (a: Float32Array) => Array.from(a.slice((b * T + i) * D, (b * T + i + 1) * D));
        const where = `row ${b}: query ${i}, key ${j}`;
        if (seen(b, i, j)) assert.notDeepEqual(at(after), at(before), `${where} is seen`);
        else assert.deepEqual(at(after), at(before), `${where} is not seen`);
      }
    }
  }
  gradcheck("attention window over places", (a, b, c) => ops.attention(a, b, c, counted), [
    q,
    k,
    v,
  ]);
});
