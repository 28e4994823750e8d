// Batched generation of prompts of different lengths (left-padded, per-row RoPE positions, pad
// and exited-slot key masks) equals each prompt generated alone, token for token.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type GenerateOptions, generateAll } from "../src/generate/generate.ts";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import { maxAbsDiff } from "./helpers.ts";

const model = initModel(presets.tiny, new Rng(7));
const prompts = [[5, 17, 3], [40, 2, 9, 33, 61, 8, 12], [70]];

async function check(o: GenerateOptions): Promise<void> {
  const batched = await generateAll(model, prompts, o);
  for (const [b, p] of prompts.entries()) {
    const alone = await generateAll(model, [p], { ...o, seed: (o.seed ?? 0) + b });
    assert.deepEqual(batched.tokens[b], alone.tokens[0], `row ${b} tokens`);
    assert.deepEqual(batched.steps[b], alone.steps[0], `row ${b} steps`);
    const rows = batched.records.filter((r) => r.row === b);
    rows.forEach((r, i) => {
      assert.ok(maxAbsDiff(r.logits, alone.records[i].logits) <= 1e-5, `row ${b} logits ${i}`);
    });
  }
}

test("batched == alone: fixed depth, random s_0, sampled", async () => {
  await check({
    maxNewTokens: 5,
    numSteps: 3,
    init: "random",
    seed: 11,
    sampling: { greedy: false, temperature: 0.9, topK: 20 },
  });
});

test("batched == alone: kl exits at different steps per row (lookup full)", async () => {
  const o: GenerateOptions = { maxNewTokens: 5, numSteps: 12, init: "zero", exit: "kl", exitThreshold: 1e-2 }; // prettier-ignore
  const out = await generateAll(model, prompts, o);
  assert.ok(new Set(out.steps.flat()).size > 1, "rows exit at different depths");
  await check(o);
});

test("batched == alone: latent-diff with warm start and latest lookup", async () => {
  await check({
    maxNewTokens: 4,
    numSteps: 10,
    init: "random",
    exit: "latent-diff",
    exitThreshold: 0.2,
    warmStart: true,
    lookup: "latest",
  });
});

test("stop tokens end a row early; the others go on", async () => {
  const free = await generateAll(model, prompts, { maxNewTokens: 4, numSteps: 2, init: "zero" });
  const stop = free.tokens[0][1];
  const out = await generateAll(model, prompts, {
    maxNewTokens: 4,
    numSteps: 2,
    init: "zero",
    stopTokens: [stop],
  });
  assert.deepEqual(out.tokens[0], free.tokens[0].slice(0, free.tokens[0].indexOf(stop) + 1));
  for (const b of [1, 2]) {
    const cut = free.tokens[b].indexOf(stop);
    assert.deepEqual(out.tokens[b], cut < 0 ? free.tokens[b] : free.tokens[b].slice(0, cut + 1));
  }
});
