// Model invariants that hold for any config, and checkpoint save/load through a model directory.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { serializeSafetensors } from "../src/checkpoint/safetensors.ts";
import { namedParameters } from "../src/model/checkpoint.ts";
import { configToJson } from "../src/model/config-json.ts";
import { type ModelConfig, presets } from "../src/model/config.ts";
import { embedInputs, forward, initModel, initializeState } from "../src/model/model.ts";
import { loadModel, saveModel } from "../src/node/model-io.ts";
import { Rng } from "../src/tensor/random.ts";
import {
  backward,
  detach,
  noGrad,
  setPoisonRecycled,
  sizeClass,
  tensor,
} from "../src/tensor/tensor.ts";
import { iterateOneStep, predictFromLatents } from "../src/model/model.ts";
import { crossEntropy } from "../src/tensor/ops.ts";

const tiny: ModelConfig = presets.tiny;
const ids = Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 7) % 96);
const labels = Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 5 + 1) % 96);

test("gradSteps = 0: prelude, adapter and core get no gradient; coda, ln_f and wte do", () => {
  const m = initModel(tiny, new Rng(1));
  const out = forward(m, ids, { batch: 2, numSteps: { noGrad: 3, withGrad: 0 }, labels });
  assert.ok(out.loss);
  backward(out.loss);
  for (const [key, p] of namedParameters(m.params)) {
    const total = p.grad ? p.grad.reduce((s, g) => s + Math.abs(g), 0) : 0;
    const learns = key.includes("coda") || key.includes("ln_f") || key.includes("wte");
    if (learns) assert.ok(total > 0, `${key} should learn`);
    else assert.equal(total, 0, `${key} must get no gradient`);
  }
});

test("truncated backprop = the same steps with the state detached by hand", () => {
  const a = initModel(tiny, new Rng(2));
  const outA = forward(a, ids, { batch: 2, numSteps: { noGrad: 2, withGrad: 2 }, labels });
  assert.ok(outA.loss);
  backward(outA.loss);
  const b = initModel(tiny, new Rng(2));
  const ctx = { batch: 2, seqLen: 6, positions: Int32Array.from([0, 1, 2, 3, 4, 5]) };
  const e = embedInputs(b, ids, ctx);
  let s = initializeState(b, e, { mode: "zero" });
  for (let t = 0; t < 2; t++) s = iterateOneStep(b, s, e, t, ctx); // on the tape …
  s = detach(s); // … then cut by hand
  for (let t = 2; t < 4; t++) s = iterateOneStep(b, s, e, t, ctx);
  const loss = crossEntropy(predictFromLatents(b, s, ctx).logits, labels);
  backward(loss);
  assert.equal(loss.data[0], outA.loss.data[0]);
  const gb = new Map(namedParameters(b.params));
  for (const [key, p] of namedParameters(a.params)) {
    assert.deepEqual(p.grad, gb.get(key)?.grad ?? null, key);
  }
});

test("attention window w: a token reaches (prelude + core·r + coda)(w − 1) positions, no further", () => {
  const config = { ...tiny, attentionWindow: 2 };
  const m = initModel(config, new Rng(5));
  const T = 12;
  const r = 2;
  const reach = (1 + 2 * r + 1) * (2 - 1); // 6 layers, one position each
  const a = Int32Array.from({ length: T }, (_, i) => (i * 11 + 3) % 96);
  const b = a.slice();
  b[0] = (a[0] + 1) % 96; // change the first token only
  const run = (x: Int32Array) => noGrad(() => forward(m, x, { batch: 1, numSteps: r }).logits.data);
  const [la, lb] = [run(a), run(b)];
  const V = tiny.paddedVocabSize;
  for (let t = 0; t < T; t++) {
    const same = la.slice(t * V, (t + 1) * V).every((v, j) => v === lb[t * V + j]);
    assert.equal(same, t > reach, `position ${t}`);
  }
});

test("the same seed gives bit-identical weights and logits", () => {
  const run = (): Float32Array => {
    const m = initModel(tiny, new Rng(3));
    return forward(m, ids, { batch: 2, numSteps: 3, init: { mode: "like-init", rng: new Rng(4) } })
      .logits.data;
  };
  assert.deepEqual(run(), run());
});

test("like-init state: truncated normal, std 0.624 after the sqrt(C) scaling", () => {
  const m = initModel(presets.tiny, new Rng(5));
  const e = tensor(new Float32Array(64 * 2000), [1, 2000, 64]);
  const s = initializeState(m, e, { mode: "like-init", rng: new Rng(6) });
  let sq = 0;
  let max = 0;
  for (const v of s.data) {
    sq += v * v;
    max = Math.max(max, Math.abs(v));
  }
  const std = Math.sqrt(sq / s.size);
  assert.ok(Math.abs(std - 0.624) < 0.005, `std ${std}`);
  assert.ok(max <= 1.8974 && max > 1.85, `bound ${max}`); // 3 · sqrt(2/5)
});

test("additive injection and untied head work end to end", () => {
  const c: ModelConfig = { ...tiny, injectionType: "add", tieEmbeddings: false };
  const m = initModel(c, new Rng(7));
  assert.equal(m.params.adapter, null);
  const out = forward(m, ids, { batch: 2, numSteps: { noGrad: 1, withGrad: 2 }, labels });
  assert.ok(out.loss && Number.isFinite(out.loss.data[0]));
  backward(out.loss);
  assert.ok(m.params.lmHead?.grad?.some((g) => g !== 0));
});

test("save -> load reproduces weights and logits (F32), BF16 rounds them", () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-model-"));
  try {
    const m = initModel(tiny, new Rng(8));
    saveModel(join(dir, "f32"), m);
    const back = loadModel(join(dir, "f32")).model;
    const logits = (x: typeof m): Float32Array =>
      forward(x, ids, { batch: 2, numSteps: 2 }).logits.data;
    assert.deepEqual(logits(back), logits(m));
    saveModel(join(dir, "bf16"), m, { dtype: "BF16" });
    const half = loadModel(join(dir, "bf16")).model;
    const w = half.params.wte.data;
    const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
    assert.ok(
      bits.every((b) => (b & 0xffff) === 0),
      "bf16 values have 16 zero low bits",
    );
    const maxErr = Math.max(...m.params.wte.data.map((v, i) => Math.abs(v - w[i])));
    assert.ok(maxErr < 2e-3, `bf16 error ${maxErr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Write a model dir by hand: config + the given tensors. */
function writeDir(
  dir: string,
  config: ModelConfig,
  tensors: { name: string; shape: number[]; data: Float32Array }[],
): void {
  writeFileSync(join(dir, "config.json"), JSON.stringify(configToJson(config)));
  writeFileSync(join(dir, "model.safetensors"), serializeSafetensors(tensors));
}

test("checkpoint problems name the tensor: missing, misshaped, unexpected; tied lm_head is ignored", () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-bad-"));
  try {
    const m = initModel(tiny, new Rng(9));
    const all = namedParameters(m.params).map(([name, t]) => ({
      name,
      shape: [...t.shape],
      data: t.data,
    }));
    writeDir(dir, tiny, [
      ...all,
      { name: "lm_head.weight", shape: [96, 64], data: m.params.wte.data },
    ]);
    assert.ok(loadModel(dir).model, "a stored tied head loads");
    writeDir(
      dir,
      tiny,
      all.filter((t) => t.name !== "transformer.adapter.weight"),
    );
    assert.throws(() => loadModel(dir), /missing tensor "transformer\.adapter\.weight"/);
    writeDir(
      dir,
      tiny,
      all.map((t) => (t.name === "transformer.ln_f.weight" ? { ...t, shape: [8, 8] } : t)),
    );
    assert.throws(
      () => loadModel(dir),
      /"transformer\.ln_f\.weight" has shape \[8, 8\], the config needs \[64\]/,
    );
    writeDir(dir, { ...tiny, nLayersInRecurrentBlock: 1 }, all);
    assert.throws(() => loadModel(dir), /unexpected tensor "transformer\.core_block\.1\./);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the Tensor-free block gives the Tensor path's numbers: forward and truncated-backprop grads", () => {
  const run = (fastBlocks: boolean): [Float32Array, (Float32Array | null)[]] => {
    const m = initModel(tiny, new Rng(10));
    const init = { mode: "like-init" as const, rng: new Rng(11) };
    const out = forward(m, ids, {
      batch: 2,
      numSteps: { noGrad: 3, withGrad: 2 },
      labels,
      init,
      fastBlocks,
    });
    assert.ok(out.loss);
    backward(out.loss);
    return [out.logits.data, namedParameters(m.params).map(([, p]) => p.grad)];
  };
  const [fastLogits, fastGrads] = run(true);
  const [specLogits, specGrads] = run(false);
  assert.deepEqual(fastLogits, specLogits);
  assert.deepEqual(fastGrads, specGrads);
  const masked = (fastBlocks: boolean): Float32Array =>
    forward(initModel(tiny, new Rng(12)), ids, {
      batch: 2,
      numSteps: 3,
      keyMask: Uint8Array.from({ length: 12 }, (_, i) => (i % 6 === 0 ? 0 : 1)),
      fastBlocks,
    }).logits.data;
  assert.deepEqual(masked(true), masked(false));
});

test("a malformed tokenizer.json is an error naming the file", () => {
  const dir = mkdtempSync(join(tmpdir(), "loom-tok-"));
  try {
    saveModel(dir, initModel(tiny, new Rng(13)), { extraFiles: { "tokenizer.json": "{bad" } });
    assert.throws(() => loadModel(dir), /tokenizer\.json: invalid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("backward with release: later steps overwrite every recycled buffer (NaN-poisoned), at any length", () => {
  for (const injectionType of ["linear", "add"] as const) {
    const m = initModel({ ...tiny, injectionType }, new Rng(5));
    const B = 4;
    const step = (T: number, release: boolean): { loss: number; grads: Float32Array[] } => {
      const x = Int32Array.from({ length: B * T }, (_, i) => (i * 11 + 3) % 96);
      const y = Int32Array.from({ length: B * T }, (_, i) => (i % 5 === 0 ? -100 : (i * 7) % 96));
      for (const [, p] of namedParameters(m.params)) p.grad = null;
      const out = forward(m, x, { batch: B, numSteps: { noGrad: 2, withGrad: 2 }, labels: y });
      assert.ok(out.loss);
      const loss = out.loss.data[0];
      backward(out.loss, { release });
      return {
        loss,
        grads: namedParameters(m.params).map(([, p]) => (p.grad ?? new Float32Array(0)).slice()),
      };
    };
    setPoisonRecycled(true);
    try {
      const plain = step(16, false);
      const plainShort = step(12, false);
      step(16, true); // releases this graph's activations and gradients, filled with NaN
      const again = step(16, true); // runs on the poisoned buffers
      const short = step(12, true); // on views of the longer step's (poisoned) buffers
      for (const [got, want] of [
        [again, plain],
        [short, plainShort],
      ]) {
        assert.ok(Number.isFinite(got.loss));
        assert.equal(got.loss, want.loss);
        got.grads.forEach((g, i) => {
          assert.deepEqual(g, want.grads[i]);
        });
      }
    } finally {
      setPoisonRecycled(false);
    }
  }
});

test("sizeClass: the pool's buffer lengths are at most 1/8 above the request", () => {
  for (const n of [1024, 1025, 2047, 4096, 5000, 123457, 1 << 20]) {
    const c = sizeClass(n);
    assert.ok(c >= n && c <= n * 1.125, `${n} -> ${c}`);
    assert.equal(sizeClass(c), c);
  }
});
