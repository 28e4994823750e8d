// Scalable-Softmax (config `attention_scale` "log-length"): the factors of the queries, the
// config field, and what it changes in a forward.
import assert from "node:assert/strict";
import { test } from "node:test";
import { queryScales } from "../src/model/attention-scale.ts";
import { type ModelConfig, presets } from "../src/model/config.ts";
import { configFromJson, configToJson } from "../src/model/config-json.ts";
import { forward, initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";

const scaled: ModelConfig = { ...presets.tiny, attentionScale: "log-length" };

test("the factors: ln(position + 1), at most ln(window); per row with row positions", () => {
  assert.equal(queryScales(presets.tiny, Int32Array.of(0, 1, 2), 1, 3), null);
  const same = (got: Float32Array | null, want: number[]) => {
    assert.deepEqual(Array.from(got ?? []), Array.from(Float32Array.from(want)));
  };
  same(queryScales(scaled, Int32Array.of(0, 1, 2, 3), 2, 4), [0, 1, 2, 3, 0, 1, 2, 3].map((p) => Math.log(p + 1))); // prettier-ignore
  same(queryScales({ ...scaled, attentionWindow: 2 }, Int32Array.of(0, 1, 5), 1, 3), [0, Math.log(2), Math.log(2)]); // prettier-ignore
  same(queryScales(scaled, Int32Array.of(0, 0, 0, 1), 2, 2), [0, 0, 0, Math.log(2)]);
});

test("config.json: attention_scale round-trips, is written only when not constant, and is checked", () => {
  assert.equal(configToJson(presets.tiny).attention_scale, undefined);
  const json = configToJson(scaled);
  assert.equal(json.attention_scale, "log-length");
  assert.equal(configFromJson(json).attentionScale, "log-length");
  assert.throws(
    () => configFromJson({ ...json, attention_scale: "sqrt" }),
    /attention_scale.*must be one of "constant", "log-length", got "sqrt"/,
  );
});

test("log-length changes the logits, and the first token (one key) not at all", () => {
  const ids = Int32Array.of(5, 17, 3, 40, 2);
  const run = (c: ModelConfig) => {
    const m = initModel(c, new Rng(3));
    return forward(m, ids, { batch: 1, numSteps: 3 }).logits.data;
  };
  const plain = run(presets.tiny);
  const logScaled = run(scaled);
  const V = presets.tiny.paddedVocabSize;
  // one key: softmax gives it weight 1 whatever the scale, so the first position is unchanged
  assert.deepEqual(logScaled.subarray(0, V), plain.subarray(0, V));
  assert.notDeepEqual(logScaled.subarray(V), plain.subarray(V));
});
