import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  clipGradNorm,
  decays,
  makeOptimizer,
  optimizerStateFromTensors,
  optimizerStateToTensors,
  type OptimizerHyper,
  type Param,
} from "../src/train/optim.ts";

interface FixtureParam {
  name: string;
  shape: number[];
  initial: number[];
  grads: number[][]; // one per step
  final: number[];
}

interface Fixture {
  hyper: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  steps: number;
  adamw: FixtureParam[];
  clip: { maxNorm: number; grads: number[][]; totalNorm: number; clipped: number[][] }[];
}

// Written by scripts/optim_reference.py with torch.optim.AdamW and clip_grad_norm_.
const FIXTURE = JSON.parse(
  readFileSync(new URL("fixtures/optim-reference.json", import.meta.url), "utf8"),
) as Fixture;

interface TestParam extends Param {
  grad: Float32Array;
}

function makeParams(specs: readonly FixtureParam[]): TestParam[] {
  return specs.map((s) => ({
    name: s.name,
    shape: s.shape,
    data: Float32Array.from(s.initial),
    grad: new Float32Array(s.initial.length),
  }));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

test("decays: no weight decay for norm weights, ln_f, qk_bias and biases", () => {
  for (const name of [
    "transformer.core_block.0.norm_1.weight",
    "transformer.prelude.1.norm_4.weight",
    "transformer.ln_f.weight",
    "transformer.coda.0.attn.qk_bias",
    "transformer.adapter.bias",
  ]) {
    assert.equal(decays(name), false, name);
  }
  for (const name of [
    "transformer.wte.weight",
    "transformer.core_block.3.attn.Wqkv.weight",
    "transformer.coda.1.mlp.fc.weight",
    "transformer.adapter.weight",
    "lm_head.weight",
  ]) {
    assert.equal(decays(name), true, name);
  }
});

test("adamw matches torch.optim.AdamW over 5 steps (max abs diff <= 1e-6)", () => {
  const { lr, ...rest } = FIXTURE.hyper;
  const opt = makeOptimizer("adamw", { ...rest, lrPeak: lr });
  const params = makeParams(FIXTURE.adamw);
  const state = opt.init(params);
  for (let step = 0; step < FIXTURE.steps; step++) {
    params.forEach((p, i) => {
      p.grad.set(FIXTURE.adamw[i].grads[step]);
    });
    opt.step(params, state, lr);
  }
  assert.equal(state.step, FIXTURE.steps);
  params.forEach((p, i) => {
    const diff = maxAbsDiff(p.data, FIXTURE.adamw[i].final);
    assert.ok(diff <= 1e-6, `${p.name}: max abs diff ${diff}`);
  });
});

test("clipGradNorm matches torch.nn.utils.clip_grad_norm_", () => {
  for (const ref of FIXTURE.clip) {
    const params = makeParams(FIXTURE.adamw);
    params.forEach((p, i) => {
      p.grad.set(ref.grads[i]);
    });
    const norm = clipGradNorm(params, ref.maxNorm);
    assert.ok(Math.abs(norm - ref.totalNorm) <= 1e-6 * ref.totalNorm, `norm ${norm}`);
    params.forEach((p, i) => {
      assert.ok(maxAbsDiff(p.grad, ref.clipped[i]) <= 1e-7, p.name);
    });
  }
  assert.ok(
    FIXTURE.clip.some((c) => c.totalNorm > c.maxNorm),
    "one case clips",
  );
  assert.ok(
    FIXTURE.clip.some((c) => c.totalNorm < c.maxNorm),
    "one case does not",
  );
});

/** §3.5 ELLISAdam (running init, update clipping, atan2, decoupled wd), float64, one tensor. */
function ellisReference(
  p: number[],
  grads: number[][],
  lrs: number[],
  h: OptimizerHyper,
  decay: boolean,
): { p: number[]; rms: number[] } {
  const { beta1, beta2, eps, lrPeak } = h;
  const wd = decay ? h.weightDecay : 0;
  let m: number[] = [];
  let v: number[] = [];
  const rmsSeen: number[] = [];
  grads.forEach((g, s) => {
    const t = s + 1;
    const lr = lrs[s];
    if (t === 1) [m, v] = [[...g], g.map((x) => x * x)];
    m = m.map((mi, i) => mi + (g[i] - mi) * (1 - beta1));
    v = v.map((vi, i) => Math.max(beta2 * vi + (1 - beta2) * g[i] * g[i], eps * eps));
    const rms = Math.sqrt(g.reduce((acc, gi, i) => acc + (gi * gi) / v[i], 0) / g.length);
    rmsSeen.push(rms);
    const step = lr / Math.max(rms, 1) / (1 - beta1 ** t);
    const bc2 = Math.sqrt(1 - beta2 ** t);
    p = p.map(
      (pi, i) => pi * (1 - (lr / lrPeak) * wd) - step * Math.atan2(m[i], Math.sqrt(v[i]) / bc2),
    );
  });
  return { p, rms: rmsSeen };
}

test("adam-atan2 matches a float64 implementation of the §3.5 pseudo-code for 3 steps", () => {
  const hyper: OptimizerHyper = {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-6,
    weightDecay: 0.1,
    lrPeak: 1e-2,
  };
  const lrs = [5e-3, 1e-2, 8e-3];
  const specs = FIXTURE.adamw;
  // step 2's gradients are 6x larger than step 1's, so update clipping (rms > 1) engages; an
  // always-zero entry exercises the eps² floor
  const grads = specs.map((s) =>
    [1, 6, 2].map((scale, step) => s.grads[step].map((g, i) => (i === 1 ? 0 : scale * g))),
  );
  const opt = makeOptimizer("adam-atan2", hyper);
  const params = makeParams(specs);
  const state = opt.init(params);
  lrs.forEach((lr, step) => {
    params.forEach((p, i) => {
      p.grad.set(grads[i][step]);
    });
    opt.step(params, state, lr);
  });
  params.forEach((p, i) => {
    const ref = ellisReference(specs[i].initial, grads[i], lrs, hyper, decays(p.name));
    assert.ok(ref.rms[1] > 1.5, `${p.name}: update clipping engaged at step 2 (rms ${ref.rms[1]})`);
    const diff = maxAbsDiff(p.data, ref.p);
    assert.ok(diff <= 1e-6, `${p.name}: max abs diff ${diff}`);
  });
});

test("norm weights, qk_bias and biases get no decay; other weights do (both optimizers)", () => {
  const names = ["a.norm_2.weight", "ln_f.weight", "attn.qk_bias", "adapter.bias", "mlp.fc.weight"];
  const lr = 1e-2;
  const hyper: OptimizerHyper = {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    lrPeak: 0.02,
  };
  // zero gradients: the Adam part of either update is exactly 0, leaving only the decay
  const expectedKeep = { adamw: 1 - lr * 0.1, "adam-atan2": 1 - (lr / 0.02) * 0.1 };
  for (const name of ["adamw", "adam-atan2"] as const) {
    const params = names.map((n) => ({
      name: n,
      data: new Float32Array([1, -2, 0.5]),
      grad: new Float32Array(3),
    }));
    const opt = makeOptimizer(name, hyper);
    opt.step(params, opt.init(params), lr);
    for (const p of params) {
      const keep = p.name === "mlp.fc.weight" ? expectedKeep[name] : 1;
      assert.deepEqual(
        p.data,
        Float32Array.from([1, -2, 0.5], (x) => x * keep),
        `${name} ${p.name}`,
      );
    }
  }
});

test("a parameter without a gradient is left alone", () => {
  const params: Param[] = [
    { name: "w", data: new Float32Array([1, 2]), grad: null },
    { name: "u", data: new Float32Array([1, 2]), grad: new Float32Array([0.1, -0.1]) },
  ];
  const opt = makeOptimizer("adamw", {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    lrPeak: 1,
  });
  opt.step(params, opt.init(params), 1e-2);
  assert.deepEqual(params[0].data, new Float32Array([1, 2]));
  assert.notDeepEqual(params[1].data, new Float32Array([1, 2]));
});

test("optimizer state round-trips through named tensors, and training resumes identically", () => {
  const hyper: OptimizerHyper = {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-6,
    weightDecay: 0.1,
    lrPeak: 1e-2,
  };
  const opt = makeOptimizer("adam-atan2", hyper);
  const run = makeParams(FIXTURE.adamw);
  const state = opt.init(run);
  const stepWith = (params: TestParam[], s: typeof state, step: number) => {
    params.forEach((p, i) => {
      p.grad.set(FIXTURE.adamw[i].grads[step]);
    });
    opt.step(params, s, 1e-2);
  };
  stepWith(run, state, 0);
  stepWith(run, state, 1);

  const saved = optimizerStateToTensors(state, run);
  assert.equal(saved.step, 2);
  assert.deepEqual(
    saved.tensors.slice(0, 2).map((t) => [t.name, t.shape]),
    [
      ["m.core_block.0.attn.Wqkv.weight", [2, 3]],
      ["v.core_block.0.attn.Wqkv.weight", [2, 3]],
    ],
  );
  const copy = {
    step: saved.step,
    tensors: saved.tensors.map((t) => ({ ...t, data: t.data.slice() })),
  };
  const resumedParams = makeParams(FIXTURE.adamw);
  resumedParams.forEach((p, i) => {
    p.data.set(run[i].data);
  });
  const resumed = optimizerStateFromTensors(copy, resumedParams);
  stepWith(run, state, 2);
  stepWith(resumedParams, resumed, 2);
  resumedParams.forEach((p, i) => {
    assert.deepEqual(p.data, run[i].data);
  });
});

test("loading optimizer state reports missing, misshaped and unexpected tensors", () => {
  const params = makeParams(FIXTURE.adamw);
  const opt = makeOptimizer("adamw", {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0,
    lrPeak: 1,
  });
  const saved = optimizerStateToTensors(opt.init(params), params);
  const without = { ...saved, tensors: saved.tensors.filter((t) => t.name !== "v.adapter.bias") };
  assert.throws(
    () => optimizerStateFromTensors(without, params),
    /missing tensor "v\.adapter\.bias"/,
  );
  const reshaped = {
    ...saved,
    tensors: saved.tensors.map((t) => (t.name.startsWith("m.core") ? { ...t, shape: [3, 2] } : t)),
  };
  assert.throws(
    () => optimizerStateFromTensors(reshaped, params),
    /shape \[3, 2\].*shape \[2, 3\]/,
  );
  const extra = {
    ...saved,
    tensors: [...saved.tensors, { name: "m.gone", shape: [1], data: new Float32Array(1) }],
  };
  assert.throws(() => optimizerStateFromTensors(extra, params), /unexpected tensors m\.gone/);
  assert.throws(() => optimizerStateFromTensors({ ...saved, step: -1 }, params), /step/);
  assert.throws(() => {
    opt.step(params.slice(1), opt.init(params), 1e-3);
  }, /does not match/);
});
