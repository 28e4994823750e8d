// The native backend against the TypeScript spec: every kernel, on random inputs with odd
// sizes, all gemm transposes, accumulation, and the attention masks. When the addon is not
// built the tests are skipped with the reason (or fail under CI with LOOM_REQUIRE_NATIVE=1).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { AttentionShape, Backend, GemmShape } from "../src/backend/backend.ts";
import { gemmNaive } from "../src/backend/js/gemm.ts";
import { jsBackend } from "../src/backend/js/index.ts";
import { backend, useBackend } from "../src/backend/select.ts";
import { loadNativeBackend, selectBackend } from "../src/node/native.ts";
import { Rng } from "../src/tensor/random.ts";

const testFile = fileURLToPath(import.meta.url);
const loaded = loadNativeBackend();
const required = process.env.CI !== undefined && process.env.LOOM_REQUIRE_NATIVE === "1";

const rng = new Rng(1234);
const rand = (n: number, scale = 1): Float32Array =>
  Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * scale);

/** Asserts |actual - expected| <= atol + rtol·|expected| elementwise, naming the worst index. */
function assertClose(
  actual: Float32Array,
  expected: Float32Array,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= atol + rtol * Math.abs(expected[i]))) {
      assert.fail(`${what}[${i}]: native ${actual[i]} vs js ${expected[i]} (error ${err})`);
    }
  }
}

if ("error" in loaded) {
  if (required) {
    test("native backend is built (CI, LOOM_REQUIRE_NATIVE=1)", () => {
      assert.fail(loaded.error);
    });
  } else {
    test("native backend", { skip: loaded.error }, () => undefined);
  }
} else {
  const native: Backend = loaded.backend;

  test(`gemm: all transposes, accumulate, odd sizes, against the naive definition (${loaded.backend.isa})`, () => {
    const shapes = [
      [1, 1, 1],
      [1, 7, 33],
      [7, 33, 129],
      [33, 129, 300],
      [129, 300, 7],
      [300, 1, 129],
      [300, 33, 300],
      [1, 300, 129],
      [4, 768, 256],
      [5, 64, 300],
      [13, 300, 1],
      [129, 129, 33],
      [7, 7, 0],
    ];
    for (const [m, n, k] of shapes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const accumulate of [false, true]) {
            const s: GemmShape = { m, n, k, transA, transB, accumulate };
            const a = rand(m * k);
            const b = rand(k * n);
            const c0 = rand(m * n);
            const want = c0.slice();
            gemmNaive(want, a, b, s);
            // bound on the rounding error: Σ|a||b| per element (= the naive gemm of |a|, |b|)
            const mag = new Float32Array(m * n);
            gemmNaive(mag, a.map(Math.abs), b.map(Math.abs), { ...s, accumulate: false });
            const got = c0.slice();
            native.gemm(got, a, b, s);
            const what = `gemm m=${m} n=${n} k=${k} tA=${transA} tB=${transB} acc=${accumulate}`;
            for (let i = 0; i < m * n; i++) {
              const tol = 1e-5 * (mag[i] + (accumulate ? Math.abs(c0[i]) : 0)) + 1e-6;
              if (!(Math.abs(got[i] - want[i]) <= tol)) {
                assert.fail(`${what} [${i}]: native ${got[i]} vs naive ${want[i]}`);
              }
            }
          }
        }
      }
    }
  });

  if (process.env.LOOM_ISA === undefined) {
    test("gemm: the smaller micro-kernels too (LOOM_ISA=avx2|generic, in a child process)", () => {
      const env = { ...process.env };
      delete env.NODE_TEST_CONTEXT; // else the child reports to this runner, not to stdout
      for (const isa of ["avx2", "generic"]) {
        const child = spawnSync(
          process.execPath,
          ["--import", "tsx", "--test", "--test-name-pattern=^gemm: all transposes", testFile],
          { env: { ...env, LOOM_ISA: isa }, encoding: "utf8" },
        );
        assert.equal(child.status, 0, `LOOM_ISA=${isa}:\n${child.stdout}${child.stderr}`);
        assert.match(child.stdout, /# pass 1/, `LOOM_ISA=${isa}: the gemm test did not run`);
      }
    });
  }

  test("gemm: big enough to run on the thread pool; views with a byte offset", () => {
    const [m, n, k] = [260, 190, 150];
    const buf = new ArrayBuffer(4 * (3 + m * k));
    const a = new Float32Array(buf, 12, m * k);
    a.set(rand(m * k));
    const b = rand(k * n);
    const s: GemmShape = { m, n, k, transA: false, transB: true, accumulate: false };
    const want = new Float32Array(m * n);
    jsBackend.gemm(want, a, b, s);
    const got = new Float32Array(m * n);
    native.gemm(got, a, b, s);
    assertClose(got, want, "gemm 260x150x190", 1e-4, 1e-5);
  });

  test("gemm: wrong arguments throw instead of touching memory", () => {
    const s: GemmShape = { m: 4, n: 4, k: 4, transA: false, transB: false, accumulate: false };
    assert.throws(() => {
      native.gemm(new Float32Array(15), new Float32Array(16), new Float32Array(16), s);
    }, RangeError);
    assert.throws(() => {
      native.gemm(new Float32Array(16), new Float64Array(16) as never, new Float32Array(16), s);
    }, TypeError);
  });

  const attentionCases: { name: string; s: AttentionShape }[] = [
    { name: "causal Tq = Tk", s: { batch: 2, heads: 3, headDim: 8, tq: 5, tk: 5 } },
    { name: "chunk Tq < Tk", s: { batch: 2, heads: 2, headDim: 5, tq: 3, tk: 7 } },
    { name: "one token after a cache", s: { batch: 3, heads: 2, headDim: 16, tq: 1, tk: 9 } },
    {
      name: "positions with gaps",
      s: {
        batch: 2,
        heads: 2,
        headDim: 4,
        tq: 3,
        tk: 6,
        qPos: Int32Array.from([2, 5, 9]),
        kPos: Int32Array.from([0, 1, 4, 5, 9, 12]),
      },
    },
    {
      name: "key mask, with a query that sees no key",
      s: {
        batch: 2,
        heads: 3,
        headDim: 6,
        tq: 4,
        tk: 4,
        keyMask: Uint8Array.from([0, 1, 1, 0, 1, 1, 0, 1]),
      },
    },
    {
      name: "sliding window over a cache, with gaps",
      s: {
        batch: 2,
        heads: 2,
        headDim: 4,
        tq: 3,
        tk: 7,
        window: 3,
        kPos: Int32Array.from([0, 1, 2, 4, 5, 6, 7]),
        qPos: Int32Array.from([5, 6, 7]),
      },
    },
    {
      name: "sliding window, training size",
      s: { batch: 2, heads: 4, headDim: 16, tq: 33, tk: 33, window: 4 },
    },
    {
      name: "window over places, per row, over a cache",
      s: {
        batch: 2,
        heads: 2,
        headDim: 4,
        tq: 3,
        tk: 7,
        window: 2,
        qPos: Int32Array.from([4, 5, 6]),
        qPlaces: Int32Array.from([1, 2, 3, 0, 4, 5]),
        kPlaces: Int32Array.from([1, 2, 3, 0, 1, 2, 3, 0, 3, 4, 0, 4, 5, 6]),
      },
    },
    { name: "threaded", s: { batch: 2, heads: 4, headDim: 64, tq: 48, tk: 64 } },
    { name: "training size, odd T", s: { batch: 2, heads: 4, headDim: 64, tq: 131, tk: 131 } },
    {
      name: "strided rows",
      s: { batch: 2, heads: 3, headDim: 8, tq: 5, tk: 7, qStride: 29, kvStride: 50 },
    },
  ];

  for (const { name, s } of attentionCases) {
    test(`attention forward and backward: ${name}`, () => {
      const { batch: B, heads: H, headDim: D, tq, tk } = s;
      const C = H * D;
      const nq = (B * tq - 1) * (s.qStride ?? C) + C;
      const nk = (B * tk - 1) * (s.kvStride ?? C) + C;
      const no = B * tq * C;
      const q = rand(nq);
      const k = rand(nk);
      const v = rand(nk);
      const out = [new Float32Array(no), new Float32Array(no)];
      const probs = [new Float32Array(B * H * tq * tk), new Float32Array(B * H * tq * tk)];
      jsBackend.attentionForward(out[0], probs[0], q, k, v, s);
      native.attentionForward(out[1], probs[1], q, k, v, s);
      assertClose(probs[1], probs[0], `${name}: probs`);
      assertClose(out[1], out[0], `${name}: out`);
      if (s.keyMask) {
        // batch 0, query 0 sees only key 0, which is masked: a zero row
        assert.deepEqual([...out[1].subarray(0, D)], new Array<number>(D).fill(0));
      }
      const dout = rand(no);
      const init = [rand(nq), rand(nk), rand(nk)]; // backward accumulates into these
      const grads = [init.map((g) => g.slice()), init.map((g) => g.slice())];
      const [js, nat] = grads;
      jsBackend.attentionBackward(js[0], js[1], js[2], dout, probs[0], q, k, v, s);
      native.attentionBackward(nat[0], nat[1], nat[2], dout, probs[0], q, k, v, s);
      ["dq", "dk", "dv"].forEach((g, i) => {
        assertClose(nat[i], js[i], `${name}: ${g}`, 1e-5, 1e-5);
      });
    });
  }

  test("attention on q, k, v views into one fused (B, T, 3C) buffer", () => {
    const s: AttentionShape = { batch: 2, heads: 2, headDim: 16, tq: 9, tk: 9 };
    const C = 32;
    Object.assign(s, { qStride: 3 * C, kvStride: 3 * C });
    const qkv = rand(2 * 9 * 3 * C);
    const views = (b: Float32Array) => [b, b.subarray(C), b.subarray(2 * C)] as const;
    const [q, k, v] = views(qkv);
    const out = [new Float32Array(2 * 9 * C), new Float32Array(2 * 9 * C)];
    const probs = [new Float32Array(2 * 2 * 81), new Float32Array(2 * 2 * 81)];
    jsBackend.attentionForward(out[0], probs[0], q, k, v, s);
    native.attentionForward(out[1], probs[1], q, k, v, s);
    assertClose(out[1], out[0], "fused: out");
    const dout = rand(out[0].length);
    const init = rand(qkv.length);
    const [gj, gn] = [init.slice(), init.slice()];
    jsBackend.attentionBackward(...views(gj), dout, probs[0], q, k, v, s);
    native.attentionBackward(...views(gn), dout, probs[0], q, k, v, s);
    assertClose(gn, gj, "fused: dqkv", 1e-5, 1e-5);
  });

  test("rmsNorm forward and backward (accumulating)", () => {
    for (const [rows, dim] of [
      [1, 1],
      [7, 33],
      [300, 129],
      [64, 256],
    ]) {
      const x = rand(rows * dim, 3);
      const w = rand(dim);
      const eps = 1e-5;
      const out = [new Float32Array(rows * dim), new Float32Array(rows * dim)];
      const rstd = [new Float32Array(rows), new Float32Array(rows)];
      jsBackend.rmsNormForward(out[0], rstd[0], x, w, rows, dim, eps);
      native.rmsNormForward(out[1], rstd[1], x, w, rows, dim, eps);
      assertClose(rstd[1], rstd[0], `rstd ${rows}x${dim}`);
      assertClose(out[1], out[0], `rmsnorm out ${rows}x${dim}`);
      const dout = rand(rows * dim);
      const dx0 = rand(rows * dim);
      const dw0 = rand(dim);
      const dx = [dx0.slice(), dx0.slice()];
      const dw = [dw0.slice(), dw0.slice()];
      jsBackend.rmsNormBackward(dx[0], dw[0], dout, x, w, rstd[0], rows, dim);
      native.rmsNormBackward(dx[1], dw[1], dout, x, w, rstd[0], rows, dim);
      assertClose(dx[1], dx[0], `rmsnorm dx ${rows}x${dim}`, 1e-5, 1e-5);
      assertClose(dw[1], dw[0], `rmsnorm dw ${rows}x${dim}`, 1e-5, 1e-4);
    }
  });

  test("rope: forward, inverse, in place", () => {
    const [B, T, H, D, maxPos] = [2, 5, 3, 8, 16];
    const cos = new Float32Array(maxPos * (D / 2));
    const sin = new Float32Array(maxPos * (D / 2));
    for (let p = 0; p < maxPos; p++) {
      for (let i = 0; i < D / 2; i++) {
        const theta = p / 10000 ** ((2 * i) / D);
        cos[p * (D / 2) + i] = Math.cos(theta);
        sin[p * (D / 2) + i] = Math.sin(theta);
      }
    }
    const positions = Int32Array.from([0, 3, 4, 9, 15]);
    const x = rand(B * T * H * D);
    for (const inverse of [false, true]) {
      const want = new Float32Array(x.length);
      jsBackend.rope(want, x, cos, sin, positions, B, H, D, inverse);
      const got = x.slice(); // in place: out aliases x
      native.rope(got, got, cos, sin, positions, B, H, D, inverse);
      assertClose(got, want, `rope inverse=${inverse}`);
    }
    const back = new Float32Array(x.length);
    native.rope(back, x, cos, sin, positions, B, H, D, false);
    native.rope(back, back, cos, sin, positions, B, H, D, true);
    assertClose(back, x, "rope then inverse rope", 1e-5, 1e-6);
    assert.throws(() => {
      native.rope(back, x, cos, sin, Int32Array.from([0, 1, 2, 3, 16]), B, H, D, false);
    }, RangeError);
  });

  test("addRows: strided copies, sums, bias adds and accumulation, bitwise", () => {
    // [rows, width, dstStride, aStride, bStride]: contiguous long rows (split by columns),
    // many short rows (split by rows), gathers and scatters through strides
    for (const [rows, width, ds, as, bs] of [
      [1, 5000, 5000, 5000, 5000],
      [300, 33, 33, 99, 40],
      [7, 64, 192, 64, 64],
      [0, 8, 8, 8, 8],
    ]) {
      const span = (stride: number) => (rows === 0 ? 0 : (rows - 1) * stride + width);
      const a = rand(span(as));
      const b = rand(span(bs));
      const bias = rand(width);
      for (const [withB, withBias, accumulate] of [
        [false, false, false],
        [false, false, true],
        [true, false, false],
        [false, true, false],
        [true, true, true],
      ]) {
        const init = rand(span(ds));
        const out = [init.slice(), init.slice()];
        const s = { rows, width, dstStride: ds, aStride: as, bStride: bs, accumulate };
        jsBackend.addRows(out[0], a, withB ? b : null, withBias ? bias : null, s);
        native.addRows(out[1], a, withB ? b : null, withBias ? bias : null, s);
        assert.deepEqual(
          out[1],
          out[0],
          `addRows ${rows}x${width} b=${withB} bias=${withBias} acc=${accumulate}`,
        );
      }
    }
    const s = { rows: 4, width: 8, aStride: 16, accumulate: false };
    assert.throws(() => {
      native.addRows(new Float32Array(32), new Float32Array(40), null, null, s);
    }, RangeError);
  });

  test("swiglu forward and backward (accumulating)", () => {
    for (const [rows, N] of [
      [1, 1],
      [7, 33],
      [300, 129],
    ]) {
      const gu = rand(rows * 2 * N, 8);
      gu[0] = -100; // saturated sigmoid
      const out = [new Float32Array(rows * N), new Float32Array(rows * N)];
      jsBackend.swigluForward(out[0], gu, rows, N);
      native.swigluForward(out[1], gu, rows, N);
      assertClose(out[1], out[0], `swiglu out ${rows}x${N}`);
      const dout = rand(rows * N);
      const init = rand(rows * 2 * N);
      const dgu = [init.slice(), init.slice()];
      jsBackend.swigluBackward(dgu[0], dout, gu, rows, N);
      native.swigluBackward(dgu[1], dout, gu, rows, N);
      assertClose(dgu[1], dgu[0], `swiglu dgu ${rows}x${N}`, 1e-5, 1e-5);
    }
  });

  test("crossEntropy: losses and gradients, ignored labels", () => {
    for (const [rows, V] of [
      [1, 1],
      [7, 33],
      [30, 300],
      [9, 5000],
    ]) {
      const logits = rand(rows * V, 10);
      const labels = Int32Array.from({ length: rows }, (_, r) => (r % 4 === 3 ? -1 : rng.int(V)));
      const losses = [new Float32Array(rows), new Float32Array(rows)];
      const dlogits = [rand(rows * V), rand(rows * V)]; // overwritten, ignored rows included
      jsBackend.crossEntropy(losses[0], dlogits[0], logits, labels, rows, V);
      native.crossEntropy(losses[1], dlogits[1], logits, labels, rows, V);
      assertClose(losses[1], losses[0], `xent losses ${rows}x${V}`, 1e-5, 1e-5);
      assertClose(dlogits[1], dlogits[0], `xent dlogits ${rows}x${V}`, 1e-5, 1e-7);
    }
    assert.throws(() => {
      native.crossEntropy(
        new Float32Array(1),
        new Float32Array(4),
        new Float32Array(4),
        Int32Array.from([4]),
        1,
        4,
      );
    }, RangeError);
  });

  test("adamw: a few steps, with weight decay", () => {
    for (const n of [1, 7, 100_003]) {
      const p0 = rand(n);
      const state = [0, 1].map(() => ({
        p: p0.slice(),
        m: new Float32Array(n),
        v: new Float32Array(n),
      }));
      for (let step = 1; step <= 3; step++) {
        const g = rand(n);
        const h = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step };
        jsBackend.adamw(state[0].p, g, state[0].m, state[0].v, h);
        native.adamw(state[1].p, g, state[1].m, state[1].v, h);
      }
      assertClose(state[1].p, state[0].p, `adamw param n=${n}`);
      assertClose(state[1].m, state[0].m, `adamw m n=${n}`);
      assertClose(state[1].v, state[0].v, `adamw v n=${n}`);
    }
  });

  test("selectBackend honours LOOM_BACKEND", () => {
    const saved = process.env.LOOM_BACKEND;
    const active = backend();
    try {
      process.env.LOOM_BACKEND = "js";
      assert.equal(selectBackend().name, "js");
      assert.equal(backend(), jsBackend);
      process.env.LOOM_BACKEND = "native";
      assert.equal(selectBackend().name, "native");
      delete process.env.LOOM_BACKEND;
      assert.equal(selectBackend().name, "native");
      process.env.LOOM_BACKEND = "cuda";
      assert.throws(() => selectBackend(), /LOOM_BACKEND/);
    } finally {
      if (saved === undefined) delete process.env.LOOM_BACKEND;
      else process.env.LOOM_BACKEND = saved;
      useBackend(active);
    }
  });
}
