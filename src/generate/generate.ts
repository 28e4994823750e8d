/**
 * Generation with per-token adaptive compute: ONE loop (prefill, then one token per step) that
 * streams a record per new token as an async iterator.
 *
 * For each new token (the reference's generate_with_adaptive_compute):
 *   1. run the prelude on the chunk (the prompt, then the last token), caching its K/V;
 *   2. s_0: the previous token's final state (warm start), else zero or seeded noise;
 *   3. up to r recurrences; after step n (n >= minSteps, every checkEvery) the exit criterion
 *      reads the last position; a row that exits stops writing deeper KV slots;
 *   4. decode with predictFromLatents (the coda), pick the token, yield its record.
 * steps[0] is the prefill's recurrence count, as in the reference.
 *
 * Batches are left-padded (right-aligned): the causal mask uses shared positions, RoPE uses each
 * row's own positions (pad-free, so a row computes exactly what it computes alone), pad keys
 * and the slots an exited row never wrote are masked per row by the cache. Row b draws its noise
 * and samples from Rng(seed + b).
 *
 * Shape letters: B batch, T chunk positions, C width, V vocab.
 */
import {
  type RavenModel,
  embedInputs,
  initializeState,
  iterateOneStep,
  predictFromLatents,
} from "../model/model.ts";
import type { BlockFn, ForwardContext } from "../model/layers.ts";
import { Rng } from "../tensor/random.ts";
import { type Tensor, noGrad, tensor } from "../tensor/tensor.ts";
import { fastBlockFor } from "../model/fast-block.ts";
import { chunkPlaces, hasAbacus } from "../model/abacus.ts";
import { type ExitCriterion, type ExitName, makeExitCriterion } from "./exit.ts";
import { type CacheSharing, type LookupStrategy, RecurrentKVCache, cacheFor } from "./kv-cache.ts";
import { type SamplingOptions, greedy, isStop, sampleToken, samplingProblem } from "./sampling.ts";

export type InitState = "zero" | "random";

export interface GenerateOptions {
  maxNewTokens: number;
  numSteps: number; // r: recurrences per token (the maximum under adaptive exit)
  exit?: ExitName; // default "none" (fixed r)
  exitThreshold?: number; // default: the criterion's reference default
  minSteps?: number; // no exit before this many steps (default 0)
  checkEvery?: number; // check the criterion every n steps (default 1)
  init?: InitState; // s_0 (default "random", the config's state_init)
  seed?: number; // row b uses Rng(seed + b) (default 0)
  warmStart?: boolean; // continuous CoT: s_0 of a token = final state of the previous one
  sampling?: SamplingOptions; // default greedy
  lookup?: LookupStrategy; // KV lookup for positions lacking a slot (default "full")
  sharing?: CacheSharing; // KV sharing (default none)
  stopTokens?: readonly number[]; // a row stops after emitting one of these
  cache?: RecurrentKVCache; // bring your own (e.g. to read its memory afterwards)
  // blocks on reused buffers (fast-block.ts; identical results); false: the Tensor path, the spec
  fastBlocks?: boolean; // default true
}

/** One new token of one row. */
export interface TokenRecord {
  row: number;
  index: number; // 0-based among the row's new tokens (0 comes from the prefill)
  token: number;
  steps: number; // recurrences used
  exitValue: number | null; // criterion value at the last check (null: no check ran)
  values: number[]; // every criterion value of this token, in step order
  logits: Float32Array; // (V) the logits the token was chosen from
}

/** Stream new tokens of every prompt (rows may differ in length), one record per token. */
export async function* generate(
  m: RavenModel,
  prompts: readonly (readonly number[])[],
  o: GenerateOptions,
): AsyncGenerator<TokenRecord> {
  const B = prompts.length;
  const { ids: padded, pads, seqLen } = leftPad(m, prompts, o);
  const cache = o.cache ?? cacheFor(m.config, B, cacheOptions(o, seqLen + o.maxNewTokens));
  cache.setPadding(pads.some((p) => p > 0) ? pads : null);
  const crit = makeExitCriterion(o.exit ?? "none", o.exitThreshold);
  const rngs = prompts.map((_, b) => new Rng((o.seed ?? 0) + b));
  const history = prompts.map((p) => [...p]);
  const done = new Uint8Array(B); // 1 = stopped
  let ids = padded; // (B, T) the chunk fed this step
  let [start, T] = [0, seqLen];
  let warm: Float32Array | null = null; // (B, C) final states of the last position
  const fast = o.fastBlocks === false ? undefined : fastBlockFor(m);
  const places = (start: number, T: number): Int32Array | undefined =>
    hasAbacus(m.config) ? paddedPlaces(m, history, pads, start, T) : undefined;
  for (let index = 0; index < o.maxNewTokens; index++) {
    await Promise.resolve(); // a suspension point per step: consumers may interleave work
    // 1) the chunk's context: shared padded positions, each row's own RoPE positions
    const ctx = { ...chunkContext(B, start, T, pads, cache, fast), places: places(start, T) };
    const chunkPads = Int32Array.from(pads, (p) => Math.min(T, Math.max(0, p - start)));
    // 2) prelude, written for the rows still generating
    const live = Uint8Array.from(done, (d) => 1 - d);
    cache.setActiveRows(live);
    const e = noGrad(() => embedInputs(m, ids, ctx)); // (B, T, C)
    // 3) s_0: warm start, else zero or per-row noise
    const s0 =
      warm !== null && o.warmStart === true
        ? tensor(warm, [B, 1, m.config.nEmbd])
        : initialStates(m, e, chunkPads, rngs, live, o.init ?? "random");
    // 4) recur with exits, then decode the last position
    const th = noGrad(() => think(m, ctx, cache, e, s0, crit, live, chunkPads, o));
    // 5) pick and stream each live row's token
    const next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      if (done[b] === 1) continue;
      const logits = th.logits.slice(b * vocab(m), (b + 1) * vocab(m));
      const token = sampleToken(logits, o.sampling ?? greedy, rngs[b], history[b]);
      next[b] = token;
      history[b].push(token);
      const values = th.values[b];
      const exitValue = values.length > 0 ? values[values.length - 1] : null;
      yield { row: b, index, token, steps: th.steps[b], exitValue, values, logits };
      if (isStop(token, o.stopTokens)) done[b] = 1;
    }
    if (done.every((d) => d === 1)) break;
    // 6) the next chunk: the new tokens, one position further
    warm = lastPositions(th.state, B, T, m.config.nEmbd);
    [start, T, ids] = [start + T, 1, next];
  }
  cache.setActiveRows(null);
}

/** Every prompt's new tokens and per-token recurrence counts (the records, collected). */
export async function generateAll(
  m: RavenModel,
  prompts: readonly (readonly number[])[],
  o: GenerateOptions,
): Promise<{ tokens: number[][]; steps: number[][]; records: TokenRecord[] }> {
  const tokens = prompts.map((): number[] => []);
  const steps = prompts.map((): number[] => []);
  const records: TokenRecord[] = [];
  for await (const r of generate(m, prompts, o)) {
    tokens[r.row].push(r.token);
    steps[r.row].push(r.steps);
    records.push(r);
  }
  return { tokens, steps, records };
}

interface Thought {
  state: Tensor; // (B, T, C) final raw states
  logits: Float32Array; // (B, V) last position, from each row's exit step
  steps: Int32Array; // (B)
  values: number[][]; // (B) criterion values per check
}

/** Up to r recurrences with per-row exits; each row decodes at its exit step (or at r). */
function think(
  m: RavenModel,
  ctx: ForwardContext,
  cache: RecurrentKVCache,
  e: Tensor,
  s0: Tensor,
  crit: ExitCriterion,
  live: Uint8Array,
  pads: Int32Array,
  o: GenerateOptions,
): Thought {
  const B = ctx.batch;
  const V = vocab(m);
  const running = live.slice();
  const steps = new Int32Array(B).fill(o.numSteps);
  const values = Array.from({ length: B }, (): number[] => []);
  const logits = new Float32Array(B * V);
  const decode = (rows: Uint8Array, out?: Tensor): void => {
    cache.setActiveRows(rows);
    const l = out ?? predictFromLatents(m, s, ctx).logits; // (B, T, V)
    copyLastRows(logits, l, rows, ctx.seqLen, V);
  };
  let s = s0;
  crit.init(B);
  for (let t = 0; t < o.numSteps && running.includes(1); t++) {
    cache.setActiveRows(running);
    const prev = s;
    s = mergeRows(prev, iterateOneStep(m, prev, e, t, ctx), running);
    const n = t + 1;
    if (crit.name === "none" || n < (o.minSteps ?? 0) || n % (o.checkEvery ?? 1) !== 0) continue;
    const out = crit.needsLogits ? predictFromLatents(m, s, ctx).logits : undefined;
    const last = out ? lastPositionLogits(out, ctx.seqLen, V) : null;
    const { exit, values: v } = crit.check({
      ...{ batch: B, seqLen: ctx.seqLen, width: m.config.nEmbd, vocab: V, pads },
      ...{ state: s.data, prev: prev.data, logits: last },
    });
    const exiting = Uint8Array.from(running, (r, b) => (r === 1 && exit[b] ? 1 : 0));
    running.forEach((r, b) => {
      if (r === 1) values[b].push(v[b]);
      if (exiting[b] === 1) [steps[b], running[b]] = [n, 0];
    });
    if (exiting.includes(1)) decode(exiting, out);
  }
  if (running.includes(1)) decode(running);
  cache.setActiveRows(null);
  return { state: s, logits, steps, values };
}

/** next where rows[b] = 1, prev elsewhere (a row that exited keeps its state). */
function mergeRows(prev: Tensor, next: Tensor, rows: Uint8Array): Tensor {
  if (!rows.includes(0)) return next;
  const n = next.size / rows.length;
  const data = prev.data.slice();
  rows.forEach((r, b) => {
    if (r === 1) data.set(next.data.subarray(b * n, (b + 1) * n), b * n);
  });
  return tensor(data, next.shape);
}

function copyLastRows(dst: Float32Array, l: Tensor, rows: Uint8Array, T: number, V: number): void {
  rows.forEach((r, b) => {
    if (r === 1) dst.set(l.data.subarray(((b + 1) * T - 1) * V, (b + 1) * T * V), b * V);
  });
}

export function lastPositionLogits(l: Tensor, T: number, V: number): Float32Array {
  const B = l.size / (T * V);
  const out = new Float32Array(B * V);
  copyLastRows(out, l, new Uint8Array(B).fill(1), T, V);
  return out;
}

/** (B, C) the last position of each row of s (B, T, C). */
export function lastPositions(s: Tensor, B: number, T: number, C: number): Float32Array {
  const out = new Float32Array(B * C);
  for (let b = 0; b < B; b++)
    out.set(s.data.subarray(((b + 1) * T - 1) * C, (b + 1) * T * C), b * C);
  return out;
}

const vocab = (m: RavenModel): number => m.config.paddedVocabSize;

/** s_0 (B, T, C): zeros, or each live row's noise drawn from its own Rng over its real tokens
 * (`pads`: the chunk's pad positions per row). */
function initialStates(
  m: RavenModel,
  e: Tensor,
  pads: Int32Array,
  rngs: Rng[],
  live: Uint8Array,
  init: InitState,
): Tensor {
  const [B, T, C] = e.shape;
  const data = new Float32Array(e.size);
  const mode = m.config.stateInit;
  if (init === "zero" || mode === "zero") return tensor(data, e.shape);
  for (let b = 0; b < B; b++) {
    if (live[b] === 0) continue;
    const n = T - (pads[b] ?? 0);
    const row = tensor(new Float32Array(n * C), [1, n, C]);
    const s = initializeState(m, row, { mode, rng: rngs[b] });
    data.set(s.data, ((b + 1) * T - n) * C);
  }
  return tensor(data, e.shape);
}

/** Shared positions start … start+T-1; per-row RoPE positions (p - pads[b]) when padded. */
function chunkContext(
  B: number,
  start: number,
  T: number,
  pads: Int32Array,
  cache: RecurrentKVCache,
  fastBlock: BlockFn | undefined,
): ForwardContext {
  const positions = Int32Array.from({ length: T }, (_, i) => start + i);
  const ctx: ForwardContext = { batch: B, seqLen: T, positions, cache, fastBlock };
  if (!pads.some((p) => p > 0)) return ctx;
  const rope = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) rope[b * T + i] = Math.max(0, start + i - pads[b]);
  }
  return { ...ctx, ropePositions: rope };
}

/**
 * Abacus places (B·T) of positions [start, start + T) of left-padded rows whose tokens so far
 * are `history` (padding: place 0).
 */
function paddedPlaces(
  m: RavenModel,
  history: readonly (readonly number[])[],
  pads: Int32Array,
  start: number,
  T: number,
): Int32Array {
  const places = new Int32Array(history.length * T);
  history.forEach((row, b) => {
    const from = Math.max(0, start - pads[b]); // the row's first token in the chunk
    const own = chunkPlaces(m.config, row, from, start + T - pads[b] - from) ?? [];
    places.set(own, b * T + T - own.length);
  });
  return places;
}

/** Prompts right-aligned in a (B, T) block, pad id 0 on the left; validates the options. */
function leftPad(
  m: RavenModel,
  prompts: readonly (readonly number[])[],
  o: GenerateOptions,
): { ids: Int32Array; pads: Int32Array; seqLen: number } {
  const problem = optionsProblem(m, prompts, o);
  if (problem !== null) throw new Error(`generate: ${problem}`);
  const T = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(prompts.length * T);
  const pads = Int32Array.from(prompts, (p) => T - p.length);
  prompts.forEach((p, b) => {
    ids.set(p, b * T + pads[b]);
  });
  return { ids, pads, seqLen: T };
}

/** What is wrong with a generate call, or null. */
export function optionsProblem(
  m: RavenModel,
  prompts: readonly (readonly number[])[],
  o: GenerateOptions,
): string | null {
  const V = vocab(m);
  if (prompts.length === 0 || prompts.some((p) => p.length === 0))
    return "every prompt needs at least one token";
  const bad = prompts.flat().find((id) => !(Number.isInteger(id) && id >= 0 && id < V));
  if (bad !== undefined) return `token id ${bad} outside the vocabulary [0, ${V})`;
  if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 0))
    return "maxNewTokens must be a non-negative integer";
  if (!(Number.isInteger(o.numSteps) && o.numSteps >= 0))
    return "numSteps must be a non-negative integer";
  const T = Math.max(...prompts.map((p) => p.length));
  if (T + Math.max(0, o.maxNewTokens - 1) > m.config.blockSize) {
    return `prompt (${T}) + new tokens (${o.maxNewTokens}) exceed the context (block_size ${m.config.blockSize})`;
  }
  if ((o.checkEvery ?? 1) < 1) return "checkEvery must be >= 1";
  return o.sampling ? samplingProblem(o.sampling) : null;
}

function cacheOptions(
  o: GenerateOptions,
  capacity: number,
): { lookup?: LookupStrategy; sharing?: CacheSharing; capacity: number } {
  return {
    capacity,
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...(o.sharing ? { sharing: o.sharing } : {}),
  };
}
