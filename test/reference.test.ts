// Parity with the official PyTorch reference (seal-rg/recurrent-pretraining @ 59e0b69) at the
// tiny fixture config, at the tolerances of the fixtures' README.
import assert from "node:assert/strict";
import { test } from "node:test";
import { backend } from "../src/backend/select.ts";
import { namedParameters, paramsFromStored } from "../src/model/checkpoint.ts";
import { configFromJson } from "../src/model/config-json.ts";
import {
  type RavenModel,
  createModel,
  embedInputs,
  forward,
  iterateOneStep,
  predictFromLatents,
} from "../src/model/model.ts";
import { backward, tensor } from "../src/tensor/tensor.ts";
import {
  assertClose,
  fixture,
  fixtureConfigJson,
  fixtureNames,
  fixtureWeights,
  maxAbs,
  maxAbsDiff,
} from "./helpers.ts";

const config = configFromJson(fixtureConfigJson());
const loadModel = (): RavenModel =>
  createModel(config, paramsFromStored(config, fixtureWeights(), "weights.safetensors"));
const model = loadModel();
const ids = fixture("input_ids").int32(); // (2, 12)
const B = 2;
const T = 12;
const ctx = { batch: B, seqLen: T, positions: Int32Array.from({ length: T }, (_, i) => i) };
const GATE = 1e-4;

console.log(`# backend: ${backend().name}`);

test("RoPE table equals the stored freqs_cis", () => {
  const stored = fixtureWeights().float32("freqs_cis"); // (1, 64, 1, 8, 2) = (cos, sin)
  const cos = stored.filter((_, i) => i % 2 === 0);
  const sin = stored.filter((_, i) => i % 2 === 1);
  assertClose(model.rope.cos, cos, 1e-6, "freqs_cis cos");
  assertClose(model.rope.sin, sin, 1e-6, "freqs_cis sin");
});

test("embed: scaled wte and the prelude output e", () => {
  const scaled: number[] = [];
  const traceCtx = { ...ctx, trace: () => undefined };
  const e = embedInputs(model, ids, traceCtx);
  for (let r = 0; r < B * T; r++) {
    for (let c = 0; c < 64; c++) scaled.push(model.params.wte.data[ids[r] * 64 + c] * 8);
  }
  assertClose(scaled, fixture("embed.scaled_wte").float32(), GATE, "embed.scaled_wte");
  assertClose(e.data, fixture("embed.e").float32(), GATE, "embed.e");
});

test("one core step from a zero state, and predict_from_latents", () => {
  const e = tensor(fixture("embed.e").float32(), [B, T, 64]);
  const s0 = tensor(fixture("step1.input_state").float32(), [B, T, 64]);
  const s1 = iterateOneStep(model, s0, e, 0, ctx);
  assertClose(s1.data, fixture("step1.state").float32(), GATE, "step1.state");
  const raw = tensor(fixture("step1.state").float32(), [B, T, 64]);
  const out = predictFromLatents(model, raw, ctx);
  assertClose(out.logits.data, fixture("pfl.step1.logits").float32(), GATE, "pfl.step1.logits");
  assertClose(out.hidden.data, fixture("pfl.step1.hidden").float32(), GATE, "pfl.step1.hidden");
  // the gotcha: feeding ln_f-normalised latents applies ln_f twice
  const latents = tensor(fixture("fwd.n4.latent_states").float32(), [B, T, 64]);
  const twice = predictFromLatents(model, latents, ctx);
  assertClose(
    twice.logits.data,
    fixture("pfl.fwd_n4_latents.logits").float32(),
    GATE,
    "pfl.fwd_n4_latents",
  );
});

test("per-module trace of forward(num_steps=2)", () => {
  const names = fixtureNames()
    .filter((n) => n.startsWith("trace_n2."))
    .sort();
  const seen: [string, Float32Array][] = [];
  forward(model, ids, { batch: B, numSteps: 2, trace: (name, t) => seen.push([name, t.data]) });
  assert.equal(seen.length, names.length, "number of traced module outputs");
  names.forEach((fixtureName, i) => {
    const module = fixtureName.slice("trace_n2.000.".length);
    assert.equal(seen[i][0], module, `call #${i}`);
    assertClose(seen[i][1], fixture(fixtureName).float32(), GATE, fixtureName);
  });
});

test("forward at every num_steps, from s_0 = 0", () => {
  for (const n of [0, 1, 2, 4, 8, 16, 32]) {
    const out = forward(model, ids, { batch: B, numSteps: n });
    assertClose(out.logits.data, fixture(`fwd.n${n}.logits`).float32(), GATE, `fwd.n${n}.logits`);
    assertClose(
      out.latentStates.data,
      fixture(`fwd.n${n}.latent_states`).float32(),
      GATE,
      `fwd.n${n}.latent_states`,
    );
    if (n === 0)
      assert.ok(
        out.logits.data.every((v) => v === 0),
        "num_steps=0 logits are exactly zero",
      );
  }
});

test("forward from a given input_states", () => {
  const state = tensor(fixture("fwd_states.input_states").float32(), [B, T, 64]);
  const out = forward(model, ids, { batch: B, numSteps: 4, init: { mode: "given", state } });
  assertClose(
    out.logits.data,
    fixture("fwd_states.n4.logits").float32(),
    GATE,
    "fwd_states.n4.logits",
  );
  assertClose(
    out.latentStates.data,
    fixture("fwd_states.n4.latent_states").float32(),
    GATE,
    "fwd_states.n4.latent_states",
  );
});

test("truncated-backprop training step [3, 2]: loss and all 39 gradients", () => {
  const m = loadModel(); // fresh parameters, no stale gradients
  const [n, k] = fixture("train.num_steps").int32();
  const out = forward(m, fixture("train.input_ids").int32(), {
    batch: B,
    numSteps: { noGrad: n, withGrad: k },
    labels: fixture("train.labels").int32(),
  });
  assert.ok(out.loss !== null);
  const lossDiff = Math.abs(out.loss.data[0] - fixture("train.loss").float32()[0]);
  console.log(`# train.loss: ${out.loss.data[0]} |diff| ${lossDiff.toExponential(2)}`);
  assert.ok(lossDiff <= 1e-5, `loss differs by ${lossDiff}`);
  assertClose(out.logits.data, fixture("train.logits").float32(), GATE, "train.logits");
  backward(out.loss);
  const params = namedParameters(m.params);
  const gradNames = fixtureNames().filter((f) => f.startsWith("grad."));
  assert.equal(params.length, gradNames.length, "one gradient per parameter");
  let worst = 0;
  for (const [key, p] of params) {
    const expected = fixture(`grad.${key}`).float32();
    assert.ok(p.grad !== null, `${key} received a gradient`);
    const rel = maxAbsDiff(p.grad, expected) / maxAbs(expected);
    worst = Math.max(worst, rel);
    assert.ok(rel <= 1e-4, `grad.${key}: max |diff| / max |grad| = ${rel}`);
  }
  console.log(
    `# gradients: worst max|diff|/max|grad| ${worst.toExponential(2)} over ${params.length}`,
  );
});
