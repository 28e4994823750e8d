// Test helpers: llm.c's check_tensor, failing loudly, and the shared Huginn reference fixtures.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { type TensorSource, parseSafetensors } from "../src/checkpoint/safetensors.ts";
import type { StoredTensors } from "../src/model/checkpoint.ts";
import { type ModelConfig, presets } from "../src/model/config.ts";
import { paddedVocabSize } from "../src/data/tokenizer.ts";
import { generateDiffusion } from "../src/generate/diffusion.ts";
import { generateAll } from "../src/generate/generate.ts";
import { generateSpeculative } from "../src/generate/speculative.ts";
import { type RavenModel, forward } from "../src/model/model.ts";
import { noGrad } from "../src/tensor/tensor.ts";

/** A model small enough to train in a test: width 32, 2 heads, over a tokenizer's vocabulary. */
export function tinyConfig(vocabSize: number, over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    ...presets.tiny,
    nEmbd: 32,
    nHeads: 2,
    intermediateSize: 64,
    vocabSize,
    paddedVocabSize: paddedVocabSize(vocabSize),
    blockSize: 16,
    ...over,
  };
}

/** The central difference (f(x + h) - f(x - h)) / 2h in x = data[i]; data[i] is restored. */
export function centralDifference(
  data: Float32Array,
  i: number,
  h: number,
  f: () => number,
): number {
  const orig = data[i];
  data[i] = orig + h;
  const up = f();
  data[i] = orig - h;
  const down = f();
  data[i] = orig;
  return (up - down) / (2 * h);
}

/** max |a - b| over all elements. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Assert max |a - b| <= atol; print the error so the test log records the measured parity. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  label: string,
): number {
  const d = maxAbsDiff(actual, expected);
  console.log(`# ${label}: max |diff| ${d.toExponential(2)} (gate ${atol.toExponential(0)})`);
  assert.ok(d <= atol, `${label}: max |diff| ${d} > ${atol}`);
  return d;
}

export const fixtureDir = new URL("../../shared/fixtures/huginn-reference/", import.meta.url);

let cases: Map<string, TensorSource> | null = null;

/** A tensor of the reference's cases.safetensors. */
export function fixture(name: string): TensorSource {
  cases ??= parseSafetensors(
    readFileSync(new URL("cases.safetensors", fixtureDir)),
    "cases.safetensors",
  );
  const t = cases.get(name);
  if (t === undefined) throw new Error(`fixture tensor ${name} not found`);
  return t;
}

export function fixtureNames(): string[] {
  fixture("input_ids");
  return [...(cases?.keys() ?? [])];
}

/** The reference's weights.safetensors as StoredTensors. */
export function fixtureWeights(): StoredTensors {
  const file = parseSafetensors(
    readFileSync(new URL("weights.safetensors", fixtureDir)),
    "weights.safetensors",
  );
  return {
    keys: () => file.keys(),
    shape: (k) => file.get(k)?.shape,
    float32: (k) => {
      const t = file.get(k);
      if (t === undefined) throw new Error(`weights.safetensors: no tensor ${k}`);
      return t.float32();
    },
  };
}

export function fixtureConfigJson(): unknown {
  return JSON.parse(readFileSync(new URL("config.json", fixtureDir), "utf8"));
}

const loomBin = new URL("../bin/loom.js", import.meta.url).pathname;

/** Runs the `loom` executable (`bin/loom.js`) with these arguments and waits for it. */
export function runLoom(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [loomBin, ...args], { encoding: "utf8", env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Greedy tokens by full recompute: each the argmax of an uncached forward of all before it. */
function uncachedGreedy(
  model: RavenModel,
  prompt: readonly number[],
  n: number,
  numSteps: number,
): number[] {
  const seq = [...prompt];
  const V = model.config.paddedVocabSize;
  for (let i = 0; i < n; i++) {
    const x = Int32Array.from(seq);
    const { logits } = noGrad(() => forward(model, x, { batch: 1, numSteps }));
    const last = logits.data.subarray((seq.length - 1) * V, seq.length * V);
    seq.push(last.indexOf(Math.max(...last)));
  }
  return seq.slice(prompt.length);
}

/** Two prompts, 8 greedy tokens at 3 recurrences from a zero state, as the decoders below take. */
export const GREEDY_PROMPTS = [
  [12, 40, 3, 77, 5],
  [2, 60, 61],
];
export const GREEDY_OPTIONS = { maxNewTokens: 8, numSteps: 3, init: "zero" } as const;

/**
 * Asserts that batched (fast and Tensor blocks), speculative and diffusion decoding of
 * GREEDY_PROMPTS give the full-recompute tokens, which it returns.
 */
export async function assertDecodersRecompute(model: RavenModel): Promise<number[][]> {
  const o = GREEDY_OPTIONS;
  const want = GREEDY_PROMPTS.map((p) => uncachedGreedy(model, p, o.maxNewTokens, o.numSteps));
  assert.deepEqual((await generateAll(model, GREEDY_PROMPTS, o)).tokens, want);
  const slow = await generateAll(model, GREEDY_PROMPTS, { ...o, fastBlocks: false });
  assert.deepEqual(slow.tokens, want);
  const first = GREEDY_PROMPTS[0];
  const spec = generateSpeculative(model, first, { ...o, draftSteps: 1, lookahead: 3 });
  assert.deepEqual(spec.tokens, want[0]);
  const diffusion = { ...o, innerRecurrence: 3, sharing: { kind: "none" } } as const;
  assert.deepEqual(generateDiffusion(model, first, diffusion).tokens, want[0]);
  return want;
}
