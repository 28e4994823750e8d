// Generation parity with the reference (seal-rg/recurrent-pretraining @ 59e0b69) at the tiny
// fixture config: cached greedy generation (gen.*), chunked prefill (chunk.*) and adaptive exit
// (adaptive.kl.*, adaptive.latent_diff.*): tokens and exit steps exact, logits within 1e-4.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateAll } from "../src/generate/generate.ts";
import { cacheFor } from "../src/generate/kv-cache.ts";
import { paramsFromStored } from "../src/model/checkpoint.ts";
import { configFromJson } from "../src/model/config-json.ts";
import { createModel, forward } from "../src/model/model.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { assertClose, fixture, fixtureConfigJson, fixtureWeights } from "./helpers.ts";

const config = configFromJson(fixtureConfigJson());
const model = createModel(config, paramsFromStored(config, fixtureWeights(), "weights"));
const GATE = 1e-4;
const prompt = Array.from(fixture("gen.prompt").int32());
const V = config.paddedVocabSize;

test("gen.*: cached greedy generation, r = 8, s_0 = 0", async () => {
  const out = await generateAll(model, [prompt], { maxNewTokens: 10, numSteps: 8, init: "zero" });
  assert.deepEqual(out.tokens[0], Array.from(fixture("gen.tokens").int32()));
  assert.deepEqual(out.steps[0], new Array(10).fill(8));
  const logits = new Float32Array(10 * V);
  out.records.forEach((r, i) => {
    logits.set(r.logits, i * V);
  });
  assertClose(logits, fixture("gen.last_logits").float32(), GATE, "gen.last_logits");
});

test("chunk.*: chunked prefill with the bottom-right causal mask", () => {
  const ids = fixture("chunk.ids").int32();
  const cache = cacheFor(config, 1);
  const run = (from: number, to: number): Float32Array =>
    noGrad(
      () =>
        forward(model, ids.slice(from, to), {
          batch: 1,
          numSteps: 4,
          cache,
          positions: Int32Array.from({ length: to - from }, (_, i) => from + i),
        }).logits.data,
    );
  assertClose(run(0, 6), fixture("chunk.first.logits").float32(), GATE, "chunk.first.logits");
  assertClose(run(6, 10), fixture("chunk.second.logits").float32(), GATE, "chunk.second.logits");
  assert.equal(cache.length, 10);
});

for (const [name, crit, thr] of [
  ["kl", "kl", 5e-4],
  ["latent_diff", "latent-diff", 0.03],
] as const) {
  test(`adaptive.${name}.*: per-token exit steps, values and logits`, async () => {
    const out = await generateAll(model, [prompt], {
      maxNewTokens: 8,
      numSteps: 16,
      init: "zero",
      exit: crit,
      exitThreshold: thr,
    });
    assert.deepEqual(out.tokens[0], Array.from(fixture(`adaptive.${name}.tokens`).int32()));
    assert.deepEqual(out.steps[0], Array.from(fixture(`adaptive.${name}.exit_steps`).int32()));
    const logits = new Float32Array(8 * V);
    const values = fixture(`adaptive.${name}.exit_values`).float32(); // (8, 16), NaN after exit
    out.records.forEach((r, i) => {
      logits.set(r.logits, i * V);
      const expected = Array.from(values.subarray(i * 16, i * 16 + r.steps));
      assertClose(r.values, expected, Math.max(1e-6, 1e-3 * thr), `${name} values ${i}`);
      if (r.steps < 16) assert.ok(Number.isNaN(values[i * 16 + r.steps]), "NaN after the exit");
    });
    const ref = fixture(`adaptive.${name}.next_token_logits`).float32();
    assertClose(logits, ref, GATE, `adaptive.${name}.next_token_logits`);
  });
}
