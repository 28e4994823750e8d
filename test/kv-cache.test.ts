// The recurrent KV cache: cached == uncached, lookup strategies, sharing memory, rollback, growth.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateAll } from "../src/generate/generate.ts";
import { RecurrentKVCache, cacheFor } from "../src/generate/kv-cache.ts";
import { presets } from "../src/model/config.ts";
import { forward, initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";
import { noGrad } from "../src/tensor/tensor.ts";
import { assertClose } from "./helpers.ts";

const model = initModel(presets.tiny, new Rng(3));
const V = presets.tiny.paddedVocabSize;
const ids = Int32Array.from([4, 8, 15, 16, 23, 42, 7, 9]);

const cached = (
  cache: RecurrentKVCache,
  from: number,
  to: number,
  r: number,
  m = model,
): Float32Array =>
  noGrad(() => {
    const positions = Int32Array.from({ length: to - from }, (_, i) => from + i);
    return forward(m, ids.slice(from, to), { batch: 1, numSteps: r, cache, positions }).logits.data;
  });

for (const window of [0, 3]) {
  test(`token-by-token cached decoding equals the uncached forward (window ${window})`, () => {
    const config = { ...presets.tiny, attentionWindow: window };
    const m = initModel(config, new Rng(3));
    const full = noGrad(() => forward(m, ids, { batch: 1, numSteps: 3 }).logits.data);
    const cache = cacheFor(config, 1, { capacity: 1 }); // forces geometric growth
    const logits = new Float32Array(ids.length * V);
    logits.set(cached(cache, 0, 3, 3, m), 0);
    for (let p = 3; p < ids.length; p++) logits.set(cached(cache, p, p + 1, 3, m), p * V);
    assertClose(logits, full, 1e-5, "cached vs uncached");
    assert.equal(cache.length, ids.length);
  });
}

test("clearLast rolls back: re-running the same chunk gives the same logits", () => {
  const cache = cacheFor(presets.tiny, 1);
  cached(cache, 0, 5, 2);
  const first = cached(cache, 5, 8, 2);
  cache.clearLast(3);
  assert.equal(cache.length, 5);
  const before = cache.memory().entries;
  const again = cached(cache, 5, 8, 2);
  assert.deepEqual(Array.from(again), Array.from(first));
  assert.ok(cache.memory().entries > before);
  assert.throws(() => {
    cache.clearLast(100);
  });
});

test("sharing a budget of K iterations cuts core memory at r = 32 by 32 / K", async () => {
  const prompt = [3, 1, 4, 1, 5];
  const mem = async (budget: number | null): Promise<ReturnType<RecurrentKVCache["memory"]>> => {
    const cache = cacheFor(presets.tiny, 1, budget ? { sharing: { kind: "modulo", budget } } : {});
    await generateAll(model, [prompt], { maxNewTokens: 3, numSteps: 32, init: "zero", cache });
    return cache.memory();
  };
  const full = await mem(null);
  const shared = await mem(4);
  console.log(`# cache bytes full ${full.bytes}, shared(4) ${shared.bytes}`);
  assert.equal(full.coreBytes / shared.coreBytes, 32 / 4);
  // 7 positions × (1 prelude + 32·2 core + 1 coda) slots × 2 (K, V) × 64 floats × 4 bytes
  assert.equal(full.bytes, 7 * 66 * 2 * 64 * 4);
  assert.equal(shared.bytes, 7 * (1 + 4 * 2 + 1) * 2 * 64 * 4);
});

/** A 1-prelude / 1-core / 1-coda cache of width 1 where each K entry holds its iteration. */
function sparseCache(lookup: "full" | "latest" | "always-last" | "skip"): RecurrentKVCache {
  const cache = new RecurrentKVCache({ batch: 1, width: 1, nPrelude: 1, nCore: 1, nCoda: 1, lookup }); // prettier-ignore
  const put = (slot: number, pos: number, value: number): void => {
    cache.update(slot, Float32Array.of(value), Float32Array.of(-value), Int32Array.of(pos));
  };
  // position 0 ran 3 iterations (slots 1, 2, 3); position 1 exited after 1 (slot 1 only)
  for (const t of [0, 1, 2]) put(1 + t, 0, 10 + t);
  put(1, 1, 20);
  return cache;
}

test("lookup strategies for tokens that exited earlier", () => {
  const query = (lookup: "full" | "latest" | "always-last" | "skip"): number[][] => {
    const kv = sparseCache(lookup).update(2, Float32Array.of(99), Float32Array.of(-99), Int32Array.of(2)); // prettier-ignore
    return [Array.from(kv.kPos), Array.from(kv.k.subarray(0, kv.tk))];
  };
  // iteration 1 of position 2: full / skip see only the positions that ran iteration 1
  assert.deepEqual(query("full"), [
    [0, 2],
    [11, 99],
  ]);
  assert.deepEqual(query("skip"), [
    [0, 2],
    [11, 99],
  ]);
  // latest: position 1 falls back to its deepest slot <= 1 (iteration 0)
  assert.deepEqual(query("latest"), [
    [0, 1, 2],
    [11, 20, 99],
  ]);
  // always-last: position 0 reads its deepest slot anywhere (iteration 2)
  assert.deepEqual(query("always-last"), [
    [0, 1, 2],
    [12, 20, 99],
  ]);
});

test("inactive rows do not write; their missing entries come back masked", () => {
  const cache = new RecurrentKVCache({ batch: 2, width: 1, nPrelude: 1, nCore: 1, nCoda: 0 });
  cache.update(1, Float32Array.of(1, 2), Float32Array.of(1, 2), Int32Array.of(0));
  cache.setActiveRows(Uint8Array.of(1, 0));
  const kv = cache.update(1, Float32Array.of(3, 4), Float32Array.of(3, 4), Int32Array.of(1));
  assert.deepEqual(Array.from(kv.k), [1, 3, 2, 0]); // (B, Tk): row 1 never wrote position 1
  assert.deepEqual(Array.from(kv.keyMask ?? []), [1, 1, 1, 0]);
  cache.setPadding(Int32Array.of(0, 1));
  cache.setActiveRows(null);
  const padded = cache.update(1, Float32Array.of(5, 6), Float32Array.of(5, 6), Int32Array.of(0));
  assert.deepEqual(Array.from(padded.keyMask ?? []), [1, 1, 0, 0]); // row 1: position 0 is a pad
});
