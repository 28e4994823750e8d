// config.json in RavenConfig form: the fixture's file round-trips exactly, defaults are the
// reference's, and a bad field is named in the error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, configFromJson, configToJson } from "../src/model/config-json.ts";
import { huginn0125, presets } from "../src/model/config.ts";
import { fixtureConfigJson } from "./helpers.ts";

test("the reference's config.json round-trips field for field", () => {
  const json = fixtureConfigJson() as Record<string, unknown>;
  const written = configToJson(configFromJson(json));
  assert.deepEqual(written, json);
  assert.deepEqual(Object.keys(written).sort(), Object.keys(json).sort());
});

test("fields left out take RavenConfig's defaults (Huginn-0125)", () => {
  const c = configFromJson({});
  assert.deepEqual({ ...c, extra: {} }, { ...huginn0125, extra: {} });
  const j = configToJson(c);
  assert.equal(j.head_dim, 96);
  assert.equal(j.effective_expected_depth, 132);
  const iv = j.init_values as Record<string, number>;
  assert.ok(Math.abs(iv.std - 0.0087039) < 1e-7);
  assert.ok(Math.abs(iv.out_proj - 5.3569e-4) < 1e-8);
  assert.ok(Math.abs(iv.embed_scale - 72.6636) < 1e-4);
});

test("aliases and unknown fields are kept", () => {
  const c = configFromJson({
    hidden_size: 128,
    num_attention_heads: 4,
    vocab_size: 50,
    my_field: [1],
  });
  assert.equal(c.nEmbd, 128);
  assert.equal(c.nHeads, 4);
  assert.equal(c.paddedVocabSize, 50);
  assert.deepEqual(configToJson(c).my_field, [1]);
});

test("every preset is valid and round-trips", () => {
  for (const p of Object.values(presets)) {
    assert.deepEqual(configFromJson(configToJson(p)), {
      ...p,
      extra: configFromJson(configToJson(p)).extra,
    });
  }
});

test("attention_window (loom's extension) is written only when set, and round-trips", () => {
  assert.equal("attention_window" in configToJson(presets.tiny), false);
  const windowed = { ...presets.tiny, attentionWindow: 3 };
  const json = configToJson(windowed);
  assert.equal(json.attention_window, 3);
  const back = configFromJson(json);
  assert.deepEqual({ ...back, extra: {} }, { ...windowed, extra: {} });
  assert.deepEqual(configToJson(back), json);
});

test("rotary_pct (loom's extension) is written only when below 1, and round-trips", () => {
  assert.equal("rotary_pct" in configToJson(presets.tiny), false);
  const nope = { ...presets.tiny, rotaryPct: 0 };
  const json = configToJson(nope);
  assert.equal(json.rotary_pct, 0);
  const back = configFromJson(json);
  assert.deepEqual({ ...back, extra: {} }, { ...nope, extra: {} });
  assert.deepEqual(configToJson(back), json);
});

test("bad configs name the field", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ n_embd: 64, n_heads: 5 }, /"n_heads".*divide/],
    [{ n_embd: "64" }, /"n_embd" must be a number/],
    [{ n_embd: 6.5 }, /"n_embd" must be a non-negative integer/],
    [{ injection_type: "gated" }, /"injection_type" must be one of "linear", "add"/],
    [{ qk_bias: "yes" }, /"qk_bias" must be true or false/],
    [{ norm_class_name: "LayerNorm" }, /"norm_class_name" .*only "RMSNorm_llama"/],
    [{ bias: true }, /"bias"/],
    [{ vocab_size: 100, padded_vocab_size: 50 }, /"padded_vocab_size" must be >= vocab_size/],
    [{ n_embd: 64, n_heads: 4, head_dim: 32 }, /"head_dim" is 32 but the other fields give 16/],
    [{ mean_recurrence: 4, mean_backprop_depth: 8 }, /"mean_backprop_depth"/],
    [{ n_embd: 60, n_heads: 4 }, /odd head dim 15/],
    [{ attention_window: -2 }, /"attention_window" must be a non-negative integer/],
    [{ rotary_pct: 1.5 }, /"rotary_pct" must be between 0 and 1/],
  ];
  for (const [json, re] of bad) {
    assert.throws(
      () => configFromJson(json, "my/config.json"),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^my\/config\.json: /);
        assert.match(err.message, re);
        return true;
      },
    );
  }
  assert.throws(() => configFromJson([1, 2], "c.json"), /c\.json: expected a JSON object/);
});
