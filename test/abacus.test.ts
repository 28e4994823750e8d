// Abacus embeddings (loom's extension): the places, the embedding they add, their gradient, the
// config.json and checkpoint fields, cached decoding and the trainer's random offsets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateAll } from "../src/generate/generate.ts";
import { abacusPlaces, chunkPlaces, randomAbacusPlaces } from "../src/model/abacus.ts";
import { expectedShapes, namedParameters, paramsFromStored } from "../src/model/checkpoint.ts";
import { type ModelConfig, presets } from "../src/model/config.ts";
import { ConfigError, configFromJson, configToJson } from "../src/model/config-json.ts";
import type { ForwardContext } from "../src/model/layers.ts";
import { type RavenModel, embedInputs, forward, initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { batchGradient } from "../src/train/trainer.ts";
import {
  GREEDY_OPTIONS,
  GREEDY_PROMPTS,
  assertClose,
  assertDecodersRecompute,
  centralDifference,
} from "./helpers.ts";

// digits: ids 10-19 ("0"-"9"); 20 is "+", 21 is "="
const digits = Array.from({ length: 10 }, (_, i) => 10 + i);
const config: ModelConfig = { ...presets.tiny, abacusPlaces: 12, abacusDigits: digits };
const ids = (s: string): number[] =>
  Array.from(s, (ch) => (ch === "+" ? 20 : ch === "=" ? 21 : 10 + Number(ch)));

/** A model whose place table is random (it starts at zero), so that places change its numbers. */
function modelWithPlaces(c: ModelConfig, seed: number): RavenModel {
  const model = initModel(c, new Rng(seed));
  const table = model.params.abacus;
  assert.ok(table);
  assert.equal(Math.max(...table.data.map(Math.abs)), 0, "a new table is zero");
  new Rng(seed + 1).fillNormal(table.data, 0, 0.3);
  return model;
}

test("places count each number's digits from 1, non-digits 0, clamped at abacus_places - 1", () => {
  const x = Int32Array.from(ids("57+681="));
  assert.deepEqual([...abacusPlaces(config, x, 1, 7)], [1, 2, 0, 1, 2, 3, 0]);
  const offsets = Int32Array.from([4]);
  assert.deepEqual([...abacusPlaces(config, x, 1, 7, { offsets })], [5, 6, 0, 5, 6, 7, 0]);
  // a chunk that continues a number: the place before it carries on
  const before = Int32Array.from([2]);
  assert.deepEqual([...abacusPlaces(config, x.subarray(4, 6), 1, 2, { before })], [3, 4]);
  const long = Int32Array.from(ids("1".repeat(15)));
  assert.deepEqual([...abacusPlaces(config, long, 1, 15)].slice(9), [10, 11, 11, 11, 11, 11]);
  // two rows, each on its own
  const rows = Int32Array.from([...ids("12+3"), ...ids("4+56")]);
  assert.deepEqual([...abacusPlaces(config, rows, 2, 4)], [1, 2, 0, 1, 1, 0, 1, 2]);
});

test("chunkPlaces: a chunk's places are those of the whole sequence", () => {
  const seq = ids("907+46=953");
  const whole = abacusPlaces(config, Int32Array.from(seq), 1, seq.length);
  for (const [start, T] of [
    [0, 10],
    [1, 3],
    [5, 1],
    [8, 2],
  ]) {
    assert.deepEqual(chunkPlaces(config, seq, start, T), whole.slice(start, start + T));
  }
  assert.equal(chunkPlaces(presets.tiny, seq, 0, 3), undefined, "no Abacus: no places");
});

test("training offsets: seeded, varied, and every number stays inside the table", () => {
  const rows = [ids("12345678+87654321="), ids("3+4=7"), ids("99+1=100")];
  const T = 18;
  const x = new Int32Array(3 * T).fill(21);
  rows.forEach((r, b) => {
    x.set(r, b * T);
  });
  const draw = (seed: number) => randomAbacusPlaces(config, x, 3, T, new Rng(seed));
  assert.deepEqual(draw(1), draw(1));
  const firstPlaces = new Set<number>();
  for (let seed = 0; seed < 40; seed++) {
    const p = draw(seed);
    assert.ok(Math.max(...p) <= config.abacusPlaces - 1);
    // 8-digit numbers fit offsets 0-3 of a 12-row table: their first digit sits at 1-4
    firstPlaces.add(p[0]);
    assert.equal(p[7], p[0] + 7, "a number's places run on");
    assert.equal(p[9], p[0], "every number of a row gets the row's offset");
  }
  assert.deepEqual([...firstPlaces].sort(), [1, 2, 3, 4]);
});

test("the embedding adds the place's row to each digit's, scaled like the tokens'", () => {
  const model = modelWithPlaces({ ...config, nLayersInPrelude: 0 }, 3);
  const x = Int32Array.from(ids("45+6="));
  const places = [1, 2, 0, 1, 0];
  const ctx: ForwardContext = {
    ...{ batch: 1, seqLen: 5, positions: Int32Array.from([0, 1, 2, 3, 4]) },
    places: Int32Array.from(places),
  };
  const e = noGrad(() => embedInputs(model, x, ctx));
  const C = config.nEmbd;
  const want = new Float32Array(5 * C);
  const { wte, abacus } = model.params;
  assert.ok(abacus);
  x.forEach((id, t) => {
    for (let c = 0; c < C; c++) {
      want[t * C + c] = (wte.data[id * C + c] + abacus.data[places[t] * C + c]) * Math.sqrt(C);
    }
  });
  assertClose(e.data, want, 1e-5, "prelude-free embedding");
  const unset = { ...ctx, places: undefined };
  assert.throws(() => embedInputs(model, x, unset), /set ctx.places/);
});

test("the place table's gradient matches finite differences; unused places get none", () => {
  const model = modelWithPlaces(config, 5);
  const x = Int32Array.from(ids("83+29=112"));
  const labels = Int32Array.from([-100, -100, -100, -100, -100, 11, 11, 12, 2]);
  const batch = { inputIds: x, labels, batch: 1, seqLen: x.length };
  const o = { depth: { noGradSteps: 0, gradSteps: 3 }, supervisedDepths: 1, init: { mode: "zero" } } as const; // prettier-ignore
  batchGradient(model, batch, o);
  const table = model.params.abacus;
  const grad = table?.grad;
  assert.ok(table && grad);
  const C = config.nEmbd;
  const rowNorm = (p: number) => Math.hypot(...grad.subarray(p * C, (p + 1) * C));
  for (const p of [0, 1, 2, 3]) assert.ok(rowNorm(p) > 0, `place ${p} is used`);
  for (const p of [4, 11]) assert.equal(rowNorm(p), 0, `place ${p} is not`);
  const loss = () =>
    noGrad(() => forward(model, x, { batch: 1, numSteps: 3, labels })).loss?.data[0] ?? NaN;
  for (const i of [1 * C + 3, 2 * C + 7, 3 * C]) {
    const analytic = grad[i];
    const numeric = centralDifference(table.data, i, 1e-2, loss);
    assert.ok(
      Math.abs(numeric - analytic) <= 0.05 * Math.abs(analytic) + 1e-4,
      `entry ${i}: numeric ${numeric} vs analytic ${analytic}`,
    );
  }
});

test("config.json: abacus_places and abacus_digits round-trip, written only when on", () => {
  const json = configToJson(config);
  assert.equal(json.abacus_places, 12);
  assert.deepEqual(json.abacus_digits, digits);
  assert.deepEqual({ ...configFromJson(json), extra: {} }, { ...config, extra: {} });
  const plain = configToJson(presets.tiny);
  assert.equal("abacus_places" in plain || "abacus_digits" in plain, false);
  assert.throws(
    () => configFromJson({ ...json, abacus_digits: undefined }),
    (e: Error) => e instanceof ConfigError && /"abacus_digits" must list/.test(e.message),
  );
  assert.throws(() => configFromJson({ ...json, abacus_digits: [3, "x"] }), /list of token ids/);
  assert.throws(() => configFromJson({ ...json, abacus_digits: [96] }), /id 96 >= vocab_size/);
});

test("checkpoint: the place table is transformer.abacus.weight, (abacus_places, C)", () => {
  const model = modelWithPlaces(config, 1);
  const named = new Map(namedParameters(model.params));
  assert.equal(named.get("transformer.abacus.weight"), model.params.abacus);
  assert.deepEqual(new Map(expectedShapes(config)).get("transformer.abacus.weight"), [12, 64]);
  const stored = (skip: string) => ({
    keys: () => [...named.keys()].filter((k) => k !== skip),
    shape: (k: string) => (k === skip ? undefined : named.get(k)?.shape),
    float32: (k: string) => named.get(k)?.data ?? new Float32Array(0),
  });
  const back = paramsFromStored(config, stored(""), "m.safetensors");
  assert.deepEqual(back.abacus?.data, model.params.abacus?.data);
  assert.throws(
    () => paramsFromStored(config, stored("transformer.abacus.weight"), "m.safetensors"),
    /m.safetensors: missing tensor "transformer.abacus.weight" \[12, 64\]/,
  );
  assert.throws(
    () => paramsFromStored(presets.tiny, stored(""), "m.safetensors"),
    /unexpected tensor "transformer.abacus.weight"/,
  );
});

// Every id from 5 up counts as a digit here, so that the random model's own tokens extend numbers
// and the cached paths must carry places across chunks (and past the table's end).
const greedyModel = modelWithPlaces(
  { ...presets.tiny, abacusPlaces: 6, abacusDigits: Array.from({ length: 91 }, (_, i) => 5 + i) },
  9,
);

test("cached, batched, speculative and diffusion decoding give the full-recompute tokens", async () => {
  const want = await assertDecodersRecompute(greedyModel);
  assert.ok(
    want.flat().some((t) => t >= 5),
    "the test needs generated digits",
  );
  // and the places matter: the same weights without the table decode otherwise
  const params = { ...greedyModel.params, abacus: null };
  const plain = { ...greedyModel, config: presets.tiny, params };
  const without = await generateAll(plain, GREEDY_PROMPTS, GREEDY_OPTIONS);
  assert.notDeepEqual(without.tokens, want);
});
