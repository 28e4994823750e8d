// Exit criteria: the reference's definitions on hand-made values, and "threshold 0 = fixed r".
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type ExitView,
  defaultThreshold,
  exitNames,
  makeExitCriterion,
} from "../src/generate/exit.ts";
import { generateAll } from "../src/generate/generate.ts";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";

const view = (state: number[], prev: number[], logits: number[] | null = null): ExitView => ({
  batch: 1,
  seqLen: state.length / 2,
  width: 2,
  state: Float32Array.from(state),
  prev: Float32Array.from(prev),
  logits: logits ? Float32Array.from(logits) : null,
  vocab: logits?.length ?? 0,
});

test("reference default thresholds", () => {
  const got = Object.fromEntries(exitNames.map((n) => [n, defaultThreshold(n)]));
  assert.deepEqual(got, {
    none: 0,
    "entropy-diff": 1e-3,
    "latent-diff": 0.03,
    kl: 1e-3,
    "minp-kl": 1e-5,
    "argmax-stability": 5,
    cosine: 1e-3,
  });
});

test("latent-diff: mean over positions of ||s_t - s_{t-1}|| / ||s_t||; 1 from a zero state", () => {
  const c = makeExitCriterion("latent-diff");
  c.init(1);
  assert.equal(c.check(view([3, 4, 1, 0], [0, 0, 0, 0])).values[0], 1);
  const r = c.check(view([3, 4, 0, 2], [3, 4.5, 0, 2]));
  assert.ok(Math.abs(r.values[0] - 0.05) < 1e-12);
  assert.deepEqual(r.exit, [false]);
  assert.deepEqual(makeExitCriterion("latent-diff", 0.06).check(view([3, 4, 0, 2], [3, 4.5, 0, 2])).exit, [true]); // prettier-ignore
});

test("cosine: 1 - cos(s_t, s_{t-1})", () => {
  const c = makeExitCriterion("cosine");
  assert.ok(Math.abs(c.check(view([1, 0], [0, 1])).values[0] - 1) < 1e-12);
  assert.ok(Math.abs(c.check(view([1, 1], [2, 2])).values[0]) < 1e-12);
});

test("kl: KL(p_prev || p_cur), p_{-1} uniform; minp-kl floors small probs to 1/V", () => {
  const logits = [Math.log(0.7), Math.log(0.2), Math.log(0.1)];
  const c = makeExitCriterion("kl");
  c.init(1);
  const first = c.check(view([1, 1], [0, 0], logits)).values[0];
  const expected = [0.7, 0.2, 0.1].reduce((s, p) => s + (1 / 3) * Math.log(1 / 3 / p), 0);
  assert.ok(Math.abs(first - expected) < 1e-6);
  assert.ok(Math.abs(c.check(view([1, 1], [0, 0], logits)).values[0]) < 1e-9);
  const mp = makeExitCriterion("minp-kl");
  mp.init(1);
  const got = mp.check(view([1, 1], [0, 0], [Math.log(0.7), Math.log(0.2), Math.log(0.05)]));
  const kept = [0.7 / 0.95, 0.2 / 0.95, 1 / 3]; // 0.05/0.95 < 0.1 · max -> 1/V
  const floored = kept.map((x) => x / (0.9 / 0.95 + 1 / 3));
  const want = floored.reduce((s, p) => s + (1 / 3) * Math.log(1 / 3 / p), 0);
  assert.ok(Math.abs(got.values[0] - want) < 1e-6, `${got.values[0]} vs ${want}`);
});

test("entropy-diff and argmax-stability", () => {
  const e = makeExitCriterion("entropy-diff");
  e.init(1);
  const h = -(0.5 * Math.log(0.5 + 1e-10)) * 2;
  assert.ok(Math.abs(e.check(view([1, 1], [0, 0], [0, 0])).values[0] - (100 - h)) < 1e-9);
  assert.ok(e.check(view([1, 1], [0, 0], [0, 0])).values[0] < 1e-12);
  const a = makeExitCriterion("argmax-stability", 2);
  a.init(1);
  const seq = [
    [1, 0],
    [2, 0],
    [3, 0],
    [0, 1],
  ].map((l) => a.check(view([1, 1], [0, 0], l)));
  assert.deepEqual(
    seq.map((r) => r.values[0]),
    [0, 1, 2, 0],
  );
  assert.deepEqual(
    seq.map((r) => r.exit[0]),
    [false, false, true, false],
  );
});

test("an exit threshold of 0 equals fixed steps; min-steps and check-every are honoured", async () => {
  const model = initModel(presets.tiny, new Rng(5));
  const base = { maxNewTokens: 4, numSteps: 6, init: "zero" as const };
  const fixed = await generateAll(model, [[1, 2, 3]], base);
  for (const exit of ["kl", "latent-diff", "cosine", "entropy-diff", "minp-kl"] as const) {
    const out = await generateAll(model, [[1, 2, 3]], { ...base, exit, exitThreshold: 0 });
    assert.deepEqual(out.tokens, fixed.tokens, exit);
    assert.deepEqual(out.steps, fixed.steps, exit);
  }
  const eager = { ...base, exit: "latent-diff" as const, exitThreshold: 10 };
  assert.deepEqual((await generateAll(model, [[1, 2, 3]], eager)).steps[0], [1, 1, 1, 1]);
  const late = { ...eager, minSteps: 3, checkEvery: 2 };
  assert.deepEqual((await generateAll(model, [[1, 2, 3]], late)).steps[0], [4, 4, 4, 4]);
});
