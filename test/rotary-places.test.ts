// Rotary positions from Abacus places (config `rotary_positions` "place"): the config field and
// its checks, the training offset that moves a whole row, attention that sees only how far apart
// places are, and every decoding path against a full recompute.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateAll } from "../src/generate/generate.ts";
import { abacusPlaces } from "../src/model/abacus.ts";
import { type ModelConfig, describeExtensions, presets } from "../src/model/config.ts";
import { ConfigError, configFromJson, configToJson } from "../src/model/config-json.ts";
import { type RavenModel, forward, initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { GREEDY_OPTIONS, GREEDY_PROMPTS, assertClose, assertDecodersRecompute } from "./helpers.ts";

// digits: ids 10-19 ("0"-"9"); 20 is "+", 21 is "="
const digits = Array.from({ length: 10 }, (_, i) => 10 + i);
const coupled: ModelConfig = {
  ...presets.tiny,
  abacusPlaces: 12,
  abacusDigits: digits,
  rotaryPositions: "place",
};
const ids = (s: string): Int32Array =>
  Int32Array.from(s, (ch) => (ch === "+" ? 20 : ch === "=" ? 21 : 10 + Number(ch)));

test("config.json: rotary_positions round-trips, is written only when 'place', and is checked", () => {
  const json = configToJson(coupled);
  assert.equal(json.rotary_positions, "place");
  assert.equal(configFromJson(json).rotaryPositions, "place");
  assert.equal("rotary_positions" in configToJson(presets.tiny), false);
  assert.equal(configFromJson(configToJson(presets.tiny)).rotaryPositions, "index");
  assert.match(describeExtensions(coupled), /rotary positions from Abacus places/);
  const fails = (patch: Record<string, unknown>, why: RegExp) => {
    assert.throws(
      () => configFromJson({ ...json, ...patch }),
      (e: Error) => e instanceof ConfigError && why.test(e.message),
    );
  };
  fails({ rotary_positions: "token" }, /"rotary_positions" must be one of "index", "place"/);
  fails({ abacus_places: 0 }, /"rotary_positions" "place" needs abacus_places > 0/);
  fails({ rotary_pct: 0 }, /"rotary_positions" "place" needs rotary_pct > 0/);
  fails({ block_size: 8 }, /"abacus_places" \(12\) must be <= block_size \(8\)/);
});

test("a training offset moves the whole row: non-digits take it too, only under 'place'", () => {
  const x = ids("57+681=");
  const offsets = Int32Array.from([4]);
  assert.deepEqual([...abacusPlaces(coupled, x, 1, 7, { offsets })], [5, 6, 4, 5, 6, 7, 4]);
  assert.deepEqual([...abacusPlaces(coupled, x, 1, 7)], [1, 2, 0, 1, 2, 3, 0]);
  const index = { ...coupled, rotaryPositions: "index" as const };
  assert.deepEqual([...abacusPlaces(index, x, 1, 7, { offsets })], [5, 6, 0, 5, 6, 7, 0]);
});

/**
 * A model with a random place table (entries of standard deviation `std`); `flat`: one random row
 * repeated, so that places reach the model through RoPE alone.
 */
function modelWithTable(c: ModelConfig, seed: number, std: number, flat: boolean): RavenModel {
  const model = initModel(c, new Rng(seed));
  const table = model.params.abacus;
  assert.ok(table);
  const rng = new Rng(seed + 1);
  const row = new Float32Array(c.nEmbd);
  for (let p = 0; p < c.abacusPlaces; p++) {
    if (p === 0 || !flat) rng.fillNormal(row, 0, std);
    table.data.set(row, p * c.nEmbd);
  }
  return model;
}

test("attention sees how far apart places are: shifting them all changes nothing", () => {
  const model = modelWithTable(coupled, 2, 0.3, true);
  const x = ids("4071+385=");
  const places = abacusPlaces(coupled, x, 1, x.length);
  const logits = (p: Int32Array) =>
    noGrad(() => forward(model, x, { batch: 1, numSteps: 3, places: p })).logits.data;
  const base = logits(places);
  assertClose(logits(places.map((p) => p + 5)), base, 1e-4, "all places + 5");
  const moved = places.slice();
  moved[6] += 1; // one digit a place further
  const changed = logits(moved);
  const worst = changed.reduce((m, v, i) => Math.max(m, Math.abs(v - base[i])), 0);
  assert.ok(worst > 1e-3, `one moved place changes the logits (by ${worst})`);
  // turned by the token index instead, the same weights give other logits
  const index = { ...model, config: { ...coupled, rotaryPositions: "index" as const } };
  const byIndex = noGrad(() => forward(index, x, { batch: 1, numSteps: 3, places })).logits.data;
  assert.notDeepEqual(byIndex, base);
});

// Every id from 5 up counts as a digit, so that the random model's own tokens extend numbers and
// the cached paths must carry places (and so RoPE angles) across chunks.
const greedyConfig: ModelConfig = {
  ...presets.tiny,
  abacusPlaces: 6,
  abacusDigits: Array.from({ length: 91 }, (_, i) => 5 + i),
  rotaryPositions: "place",
};
const greedyModel = modelWithTable(greedyConfig, 3, 0.05, false);

test("cached, batched, speculative and diffusion decoding give the full-recompute tokens", async () => {
  const want = await assertDecodersRecompute(greedyModel);
  assert.ok(new Set(want.flat()).size > 2, "the test needs varied tokens");
  // and RoPE follows the places: the same weights turned by token index decode otherwise
  const index = { ...greedyModel, config: { ...greedyConfig, rotaryPositions: "index" as const } };
  const byIndex = await generateAll(index, GREEDY_PROMPTS, GREEDY_OPTIONS);
  assert.notDeepEqual(byIndex.tokens, want);
});

// A window over places: attention_window counts places under rotary_positions "place".
const windowed: ModelConfig = { ...coupled, attentionWindow: 2 };

test("a window of w places: a digit reaches blocks·(w − 1) places, no further, at any index", () => {
  assert.match(describeExtensions(windowed), /attention window 2 places/);
  const model = modelWithTable(windowed, 4, 0.3, false);
  const blocks = windowed.nLayersInPrelude + windowed.nLayersInRecurrentBlock + windowed.nLayersInCoda; // prettier-ignore
  const last = (x: Int32Array) => {
    const V = windowed.vocabSize;
    const out = noGrad(() => forward(model, x, { batch: 1, numSteps: 1 })).logits.data;
    return out.slice((x.length - 1) * V, x.length * V);
  };
  // "1234567890": the last digit is at place 10; digit d stands at place d
  const base = "1234567890";
  const reach = blocks; // (w − 1) = 1 place per block
  const changed = (place: number) => {
    const x = ids(base);
    x[place - 1] = x[place - 1] === 14 ? 15 : 14;
    return last(x);
  };
  const want = last(ids(base));
  assert.deepEqual(changed(10 - reach - 1), want, "a digit beyond the reach changes nothing");
  assert.notDeepEqual(changed(10 - reach), want, "a digit at the edge of the reach changes it");
});

test("a window over places: cached, batched, speculative and diffusion decoding give the full-recompute tokens", async () => {
  const model = modelWithTable({ ...greedyConfig, attentionWindow: 2 }, 5, 0.05, false);
  const want = await assertDecodersRecompute(model);
  assert.ok(new Set(want.flat()).size > 2, "the test needs varied tokens");
  const byIndex = { ...model, config: { ...model.config, rotaryPositions: "index" as const } };
  assert.notDeepEqual((await generateAll(byIndex, GREEDY_PROMPTS, GREEDY_OPTIONS)).tokens, want);
});
