/**
 * Self-speculative decoding (the reference's generate_speculative), batch 1: draft `lookahead`
 * tokens autoregressively with `draftSteps` recurrences, roll the cache back, verify all drafts
 * in ONE forward with `numSteps` recurrences (positions: the last accepted token through the
 * second-last draft, bottom-right causal mask), accept the longest passing prefix, and take the
 * verifier's own token at the first mismatch.
 *
 *   threshold >= 1: a draft passes when it is the verifier's argmax;
 *   threshold <  1: when the verifier's prob of it is >= threshold · the max prob.
 *
 * With greedy decoding, exact verification and a deterministic s_0 (zero) the output equals
 * plain greedy decoding at numSteps: the verify chunk computes what sequential decoding does.
 *
 * Shape letters: T chunk positions, V vocab.
 */
import { chunkPlaces } from "../model/abacus.ts";
import { type RavenModel, type StateInitOption, forward } from "../model/model.ts";
import { Rng } from "../tensor/random.ts";
import { noGrad } from "../tensor/tensor.ts";
import type { InitState } from "./generate.ts";
import { type CacheSharing, type LookupStrategy, cacheFor } from "./kv-cache.ts";
import {
  type SamplingOptions,
  argmax,
  greedy,
  isStop,
  sampleToken,
  softmax,
  upToStop,
} from "./sampling.ts";

export interface SpeculativeOptions {
  maxNewTokens: number;
  numSteps: number; // recurrences of the prefill and of the verifier
  draftSteps?: number; // recurrences of the drafts (default 4)
  lookahead?: number; // drafted tokens per round (default 8)
  verificationThreshold?: number; // default 1: exact (argmax) verification
  init?: InitState; // default "zero"
  seed?: number;
  sampling?: SamplingOptions; // default greedy
  lookup?: LookupStrategy;
  sharing?: CacheSharing;
  stopTokens?: readonly number[]; // stop after accepting one of these
}

export interface SpeculativeResult {
  tokens: number[]; // new tokens
  rounds: number; // draft + verify rounds
  drafted: number; // drafted tokens in total
  accepted: number; // drafts accepted by the verifier
  forwards: number; // model forwards (prefill + drafts + verifies)
}

export function generateSpeculative(
  m: RavenModel,
  prompt: readonly number[],
  o: SpeculativeOptions,
): SpeculativeResult {
  const V = m.config.paddedVocabSize;
  const sampling = o.sampling ?? greedy;
  const rng = new Rng(o.seed ?? 0);
  const cache = cacheFor(m.config, 1, {
    capacity: prompt.length + o.maxNewTokens + (o.lookahead ?? 8),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...(o.sharing ? { sharing: o.sharing } : {}),
  });
  const init = (): StateInitOption =>
    (o.init ?? "zero") === "zero" || m.config.stateInit === "zero"
      ? { mode: "zero" }
      : { mode: m.config.stateInit, rng };
  const stats = { rounds: 0, drafted: 0, accepted: 0, forwards: 0 };
  // one cached forward of `ids` at positions start…; logits (T, V)
  const run = (ids: readonly number[], start: number, numSteps: number): Float32Array => {
    stats.forwards++;
    const positions = Int32Array.from(ids, (_, i) => start + i);
    const places = chunkPlaces(m.config, [...history.slice(0, start), ...ids], start, ids.length);
    const opts = { batch: 1, numSteps, init: init(), positions, places, cache };
    return noGrad(() => forward(m, Int32Array.from(ids), opts).logits.data);
  };
  const history = [...prompt];
  const pick = (logits: Float32Array): number => sampleToken(logits, sampling, rng, history);
  // 1) prefill at full depth
  const pre = run(prompt, 0, o.numSteps);
  const tokens = [pick(pre.subarray((prompt.length - 1) * V))];
  history.push(tokens[0]);
  const stopped = (): boolean => tokens.some((t) => isStop(t, o.stopTokens));
  while (tokens.length < o.maxNewTokens && !stopped()) {
    stats.rounds++;
    const L = Math.min(o.lookahead ?? 8, o.maxNewTokens - tokens.length);
    const base = cache.length; // position of the last accepted token (not yet cached)
    // 2) draft L tokens with fewer recurrences
    const drafts: number[] = [];
    let cur = tokens[tokens.length - 1];
    for (let i = 0; i < L; i++) {
      cur = pick(run([cur], base + i, o.draftSteps ?? 4));
      drafts.push(cur);
      history.push(cur);
    }
    history.length -= L;
    stats.drafted += L;
    // 3) roll back and verify in one forward
    cache.truncate(base);
    const logits = run([tokens[tokens.length - 1], ...drafts.slice(0, L - 1)], base, o.numSteps);
    // 4) accept the longest passing prefix; the verifier decides the first failing token
    let n = 0;
    while (n < L && passes(logits.subarray(n * V, (n + 1) * V), drafts[n], o)) n++;
    stats.accepted += n;
    const accepted = drafts.slice(0, n);
    if (n < L) {
      history.push(...accepted);
      accepted.push(pick(logits.subarray(n * V, (n + 1) * V)));
      history.length -= n;
      cache.truncate(base + n + 1);
    }
    tokens.push(...accepted);
    history.push(...accepted);
  }
  return { tokens: upToStop(tokens.slice(0, o.maxNewTokens), o.stopTokens), ...stats };
}

function passes(logits: Float32Array, draft: number, o: SpeculativeOptions): boolean {
  const thr = o.verificationThreshold ?? 1;
  if (thr >= 1) return argmax(logits) === draft;
  const p = softmax(logits);
  let max = 0;
  for (const x of p) max = Math.max(max, x);
  return p[draft] >= thr * max;
}
