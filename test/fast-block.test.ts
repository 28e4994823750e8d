// The inference blocks (src/model/fast-block.ts) against the Tensor path they stand in for:
// generation gives bitwise the same logits, tokens and steps, on the active backend, for
// padded batches, exits, lookups, sharing, warm starts and prefill chunks.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type GenerateOptions, generateAll } from "../src/generate/generate.ts";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";

const model = initModel({ ...presets.tiny, nLayersInPrelude: 2 }, new Rng(3));
const prompts = [[5, 17, 3], [40, 2, 9, 33, 61, 8, 12], [70]];

async function same(o: GenerateOptions, ps = prompts, m = model): Promise<void> {
  const spec = await generateAll(m, ps, { ...o, fastBlocks: false });
  const fast = await generateAll(m, ps, o);
  assert.deepEqual(fast.tokens, spec.tokens);
  assert.deepEqual(fast.steps, spec.steps);
  fast.records.forEach((r, i) => {
    const want = spec.records[i].logits;
    const bad = r.logits.findIndex((x, j) => !Object.is(x, want[j]));
    assert.equal(bad, -1, `record ${i}: logit ${bad} ${r.logits[bad]} vs ${want[bad]}`);
    assert.deepEqual(r.values, spec.records[i].values);
  });
}

test("fast blocks == Tensor path: one prompt, fixed depth", async () => {
  await same({ maxNewTokens: 6, numSteps: 4, init: "zero" }, [prompts[1]]);
});

test("fast blocks == Tensor path: padded batch, random s_0, sampled", async () => {
  const sampling = { greedy: false, temperature: 0.9, topK: 20 };
  await same({ maxNewTokens: 5, numSteps: 3, init: "random", seed: 11, sampling });
});

test("fast blocks == Tensor path: kl exits per row (masked slots)", async () => {
  await same({ maxNewTokens: 5, numSteps: 10, init: "zero", exit: "kl", exitThreshold: 1e-2 });
});

test("fast blocks == Tensor path: latest lookup, warm start, modulo sharing", async () => {
  const base = { maxNewTokens: 4, numSteps: 8, init: "random" as const, warmStart: true };
  await same({ ...base, exit: "latent-diff", exitThreshold: 0.2, lookup: "latest" });
  await same({ ...base, sharing: { kind: "modulo", budget: 3 } });
});

test("fast blocks == Tensor path: logits × ln(keys), a padded batch in a window", async () => {
  const scaled = { ...presets.tiny, attentionScale: "log-length" as const };
  const o = { maxNewTokens: 5, numSteps: 3, init: "random" as const, seed: 2 };
  await same(o, prompts, initModel(scaled, new Rng(4)));
  await same(o, prompts, initModel({ ...scaled, attentionWindow: 3 }, new Rng(4)));
});

test("fast blocks == Tensor path: RoPE turned by Abacus places, a padded batch", async () => {
  const digits = Array.from({ length: 40 }, (_, i) => 5 + 2 * i); // odd ids 5-83 are digits
  const coupled = { ...presets.tiny, abacusPlaces: 8, abacusDigits: digits };
  const m = initModel({ ...coupled, rotaryPositions: "place" as const }, new Rng(6));
  const table = m.params.abacus;
  assert.ok(table);
  new Rng(7).fillNormal(table.data, 0, 0.05);
  await same({ maxNewTokens: 5, numSteps: 3, init: "random", seed: 2 }, prompts, m);
});
