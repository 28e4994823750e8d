// Self-speculative decoding with exact verification equals plain greedy decoding; the
// diffusion-forcing sampler at full inner depth without sharing equals sequential decoding.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateDiffusion } from "../src/generate/diffusion.ts";
import { generateAll } from "../src/generate/generate.ts";
import { generateSpeculative } from "../src/generate/speculative.ts";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";

const model = initModel(presets.tiny, new Rng(9));
const prompt = [12, 40, 3, 77, 5];

test("speculative (draft 1 step, lookahead 4, exact verification) == plain greedy", async () => {
  const plain = await generateAll(model, [prompt], { maxNewTokens: 12, numSteps: 4, init: "zero" });
  for (const [draftSteps, lookahead] of [
    [1, 4],
    [4, 3],
    [2, 1],
  ] as const) {
    const spec = generateSpeculative(model, prompt, {
      maxNewTokens: 12,
      numSteps: 4,
      draftSteps,
      lookahead,
    });
    assert.deepEqual(spec.tokens, plain.tokens[0], `draft ${draftSteps}, lookahead ${lookahead}`);
    if (draftSteps === 4) assert.equal(spec.accepted, spec.drafted, "same depth: all accepted");
  }
});

test("speculative with a lenient threshold accepts at least as much", () => {
  const o = { maxNewTokens: 10, numSteps: 4, draftSteps: 1, lookahead: 4 };
  const exact = generateSpeculative(model, prompt, o);
  const loose = generateSpeculative(model, prompt, { ...o, verificationThreshold: 0.01 });
  assert.equal(loose.tokens.length, 10);
  assert.ok(loose.accepted / loose.drafted >= exact.accepted / exact.drafted);
});

test("diffusion sampler: full inner depth, no sharing == sequential; parallel mode runs", async () => {
  const plain = await generateAll(model, [prompt], { maxNewTokens: 8, numSteps: 4, init: "zero" });
  const exact = generateDiffusion(model, prompt, {
    maxNewTokens: 8,
    numSteps: 4,
    innerRecurrence: 4,
    sharing: { kind: "none" },
  });
  assert.deepEqual(exact.tokens, plain.tokens[0]);
  const fast = generateDiffusion(model, prompt, { maxNewTokens: 8, numSteps: 4, innerRecurrence: 1 }); // prettier-ignore
  assert.equal(fast.tokens.length, 8);
  assert.ok(fast.iterations.every((n) => n <= 4));
});
