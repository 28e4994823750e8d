// The trajectory recorder on a tiny random-weight model: schema, invariants, and agreement with
// forward() (the last recorded step is exactly a forward with N steps from the same s_0).
import assert from "node:assert/strict";
import { test } from "node:test";
import { TRAJECTORY_VERSION, initFor, recordTrajectory } from "../src/analysis/trajectory.ts";
import { presets } from "../src/model/config.ts";
import { forward, initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import { noGrad } from "../src/tensor/tensor.ts";

const model = initModel(presets.tiny, new Rng(1));
const ids = [1, 17, 42, 5, 77, 30];
const N = 8;
const tr = recordTrajectory(model, ids, {
  steps: N,
  seeds: [0, 1],
  topK: 3,
  decode: (id) => `<${id}>`,
});

test("trajectory: versioned schema, one entry per step", () => {
  assert.equal(tr.version, TRAJECTORY_VERSION);
  assert.equal(tr.steps, N);
  assert.deepEqual(tr.seeds, [0, 1]);
  assert.equal(tr.tokens.length, ids.length);
  assert.equal(tr.pca.components, 6);
  const counted = Object.values(tr.classCounts).reduce((a, b) => a + b, 0);
  assert.equal(counted, ids.length);
  for (const [t, tok] of tr.tokens.entries()) {
    assert.equal(tok.index, t);
    assert.equal(tok.id, ids[t]);
    assert.equal(tok.text, `<${ids[t]}>`);
    assert.ok(["fixed-point", "orbit", "slider", "unconverged"].includes(tok.class));
    for (const key of [
      "pca",
      "distance",
      "relativeStep",
      "cosine",
      "norm",
      "entropy",
      "kl",
      "lens",
    ] as const) {
      assert.equal(tok[key].length, N, `${key} of token ${t}`);
    }
    assert.ok(tok.pca.every((p) => p.length === 6));
    assert.ok(tok.lens.every((l) => l.length === 3 && l[0].p >= l[1].p && l[1].p >= l[2].p));
    assert.equal(tok.seeds.length, 1);
    assert.equal(tok.seeds[0].pca.length, N);
  }
  // survives JSON
  assert.deepEqual(JSON.parse(JSON.stringify(tr)), tr);
});

test("trajectory: distance, KL and 1 − cos go to 0 at the last step; pca is centred", () => {
  for (const tok of tr.tokens) {
    assert.equal(tok.distance[N - 1], 0);
    assert.equal(tok.kl[N - 1], 0);
    assert.ok(Math.abs(tok.cosine[N - 1] - 1) < 1e-5);
    assert.ok(tok.distance[0] > 0);
    for (let j = 0; j < 6; j++) {
      const mean = tok.pca.reduce((a, p) => a + p[j], 0) / N;
      assert.ok(
        Math.abs(mean) < 1e-3 * (1 + Math.abs(tok.centre[j])),
        `token ${tok.index} PC${j + 1} mean ${mean}`,
      );
    }
    assert.equal(tok.seeds[0].distance[N - 1], 0);
    assert.ok(tok.seedSpread >= 0 && tok.seedSpread === tok.seeds[0].finalDistance);
  }
  const ratio = tr.pca.varianceRatio;
  assert.ok(ratio.every((r, j) => r >= 0 && (j === 0 || r <= ratio[j - 1] + 1e-9)));
  assert.ok(ratio.reduce((a, b) => a + b, 0) <= 1 + 1e-6);
});

test("trajectory: the lens at the last step is forward()'s distribution from the same s_0", () => {
  const out = noGrad(() =>
    forward(model, Int32Array.from(ids), { batch: 1, numSteps: N, init: initFor(model, 0) }),
  );
  const V = model.config.paddedVocabSize;
  for (const tok of tr.tokens) {
    const row = out.logits.data.subarray(tok.index * V, (tok.index + 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    assert.equal(tok.lens[N - 1][0].id, best, `token ${tok.index}`);
  }
});

test("trajectory: deterministic for a seed, different for another seed", () => {
  const again = recordTrajectory(model, ids, {
    steps: N,
    seeds: [0, 1],
    topK: 3,
    decode: (id) => `<${id}>`,
  });
  assert.deepEqual(again, tr);
  const other = recordTrajectory(model, ids, { steps: N, seeds: [5] });
  assert.notDeepEqual(other.tokens[0].distance, tr.tokens[0].distance);
});
