/**
 * Next-token choice from one row of logits (V), in the reference's order (_sample_next_token):
 * repetition penalty -> temperature -> softmax -> top-k -> top-p -> min-p -> renormalise ->
 * multinomial (seeded). Greedy is the argmax (after the repetition penalty), first index on ties.
 */
import type { Rng } from "../tensor/random.ts";

export interface SamplingOptions {
  greedy: boolean; // argmax; the other fields are ignored except repetitionPenalty
  temperature?: number; // logits / T (default 1)
  topK?: number; // keep the k most probable tokens (0 = off)
  topP?: number; // keep the smallest prefix with cumulative prob >= p (always the top one)
  minP?: number; // drop tokens with prob < minP · max prob
  repetitionPenalty?: number; // HF: logit / p if > 0 else logit · p, for tokens seen before
}

export const greedy: SamplingOptions = { greedy: true };

/** The HF repetition penalty, in place on a copy: returns the processed logits. */
export function applyRepetitionPenalty(
  logits: Float32Array,
  seen: Iterable<number>,
  penalty: number,
): Float32Array {
  const out = logits.slice();
  if (penalty === 1) return out;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= out.length) continue;
    out[id] = out[id] > 0 ? out[id] / penalty : out[id] * penalty;
  }
  return out;
}

/** softmax(logits / temperature) in float64. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const V = logits.length;
  const p = new Float64Array(V);
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[i] / temperature);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    p[i] = Math.exp(logits[i] / temperature - max);
    sum += p[i];
  }
  for (let i = 0; i < V; i++) p[i] /= sum;
  return p;
}

/** Zero every prob below the k-th largest (ties at the k-th survive, as torch.where does). */
export function topK(p: Float64Array, k: number): Float64Array {
  if (!(k > 0) || k >= p.length) return p;
  const kth = Float64Array.from(p).sort().reverse()[k - 1];
  return p.map((x) => (x < kth ? 0 : x));
}

/** Nucleus: drop the tokens after the cumulative prob exceeds p (the top one always stays). */
export function topP(p: Float64Array, top: number): Float64Array {
  if (!(top > 0) || top >= 1) return p;
  const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
  const out = p.slice();
  let cum = 0;
  order.forEach((id, rank) => {
    cum += p[id];
    if (rank > 0 && cum > top) out[id] = 0;
  });
  return out;
}

/** Drop the tokens with prob < minP · max prob. */
export function minP(p: Float64Array, m: number): Float64Array {
  if (!(m > 0)) return p;
  let max = 0;
  for (const x of p) max = Math.max(max, x);
  return p.map((x) => (x < m * max ? 0 : x));
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** A draw from unnormalised probabilities. */
export function multinomial(p: ArrayLike<number>, rng: Rng): number {
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += p[i];
  const u = rng.uniform() * sum;
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] <= 0) continue;
    cum += p[i];
    last = i;
    if (u < cum) return i;
  }
  return last;
}

/** The processed distribution (renormalised) the sampler draws from. */
export function samplingDistribution(
  logits: Float32Array,
  o: SamplingOptions,
  seen: Iterable<number> = [],
): Float64Array {
  const l = applyRepetitionPenalty(logits, seen, o.repetitionPenalty ?? 1);
  let p = softmax(l, o.temperature ?? 1);
  p = topK(p, o.topK ?? 0);
  p = topP(p, o.topP ?? 1);
  p = minP(p, o.minP ?? 0);
  let sum = 0;
  for (const x of p) sum += x;
  return p.map((x) => x / Math.max(sum, 1e-10));
}

/** The next token of one row: greedy argmax or a seeded draw. */
export function sampleToken(
  logits: Float32Array,
  o: SamplingOptions,
  rng: Rng,
  seen: Iterable<number> = [],
): number {
  if (o.greedy) return argmax(applyRepetitionPenalty(logits, seen, o.repetitionPenalty ?? 1));
  return multinomial(samplingDistribution(logits, o, seen), rng);
}

/** A problem with the options, or null. */
export function samplingProblem(o: SamplingOptions): string | null {
  if (o.temperature !== undefined && !(o.temperature > 0)) return "temperature must be > 0";
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0))
    return "top-k must be a non-negative integer";
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) return "top-p must be in (0, 1]";
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) return "min-p must be in [0, 1]";
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0))
    return "repetition penalty must be > 0";
  return null;
}

/** Whether `token` ends a row (is one of `stopTokens`). */
export function isStop(token: number, stopTokens: readonly number[] | undefined): boolean {
  return stopTokens?.includes(token) === true;
}

/** `tokens` up to and including the first of `stopTokens` (all of them when none occurs). */
export function upToStop(tokens: number[], stopTokens: readonly number[] | undefined): number[] {
  const stop = tokens.findIndex((t) => isStop(t, stopTokens));
  return stop < 0 ? tokens : tokens.slice(0, stop + 1);
}
