/**
 * The diffusion-forcing parallel sampler (Geiping, Yang, Su, arXiv 2510.14961; the reference's
 * generate_diffusion_style), batch 1. A wavefront of not-yet-frozen positions is refined in
 * parallel; every outer step:
 *   1. roll the cache back to the frozen prefix, embed the wavefront's current input tokens
 *      (optionally an EMA with the previous embeddings, η);
 *   2. mix noise into the states, β / (1 + iterations so far) (β = 0 by default, as the paper);
 *   3. run `innerRecurrence` core steps on all wavefront positions at once;
 *   4. decode every wavefront position (its guess for the next token) and append `headway`
 *      new positions;
 *   5. freeze the longest prefix whose relative latent change ||s - s_prev|| / ||s|| < exitT
 *      (or that reached numSteps iterations) and whose input token did not change.
 * KV sharing defaults to a budget of one iteration (the reference's compress-s4 for its
 * 4-block core), so every position reads the latest K/V of the others.
 *
 * Shape letters: W wavefront positions, C width, V vocab.
 */
import type { ForwardContext } from "../model/layers.ts";
import { chunkPlaces } from "../model/abacus.ts";
import {
  type RavenModel,
  embedInputs,
  forward,
  initializeState,
  iterateOneStep,
  predictFromLatents,
} from "../model/model.ts";
import { Rng } from "../tensor/random.ts";
import { noGrad, tensor } from "../tensor/tensor.ts";
import type { InitState } from "./generate.ts";
import { type CacheSharing, cacheFor } from "./kv-cache.ts";
import { type SamplingOptions, greedy, isStop, sampleToken, upToStop } from "./sampling.ts";

export interface DiffusionOptions {
  maxNewTokens: number;
  numSteps: number; // prefill depth, and the most iterations a position gets
  innerRecurrence?: number; // core steps per outer step (default 4)
  headway?: number; // new positions per outer step (default 1)
  exitThreshold?: number; // freeze below this relative latent change (default 0.03)
  maxWavefront?: number; // default 128
  noiseMixing?: number; // β (default 0)
  emaEmbeds?: number; // η (default 0: off)
  init?: InitState; // s_0 of new positions (default "zero")
  seed?: number;
  sampling?: SamplingOptions; // default greedy
  sharing?: CacheSharing; // default a budget of 1 iteration
  stopTokens?: readonly number[]; // stop once one of these is frozen
}

export interface DiffusionResult {
  tokens: number[];
  outerSteps: number; // model passes after the prefill
  iterations: number[]; // core iterations each frozen position received
}

interface Front {
  state: Float32Array; // (C)
  prev: Float32Array; // (C) before the last outer step
  embed: Float32Array | null; // (C) for the EMA
  iters: number;
}

export function generateDiffusion(
  m: RavenModel,
  prompt: readonly number[],
  o: DiffusionOptions,
): DiffusionResult {
  const V = m.config.paddedVocabSize;
  const P = prompt.length;
  if ((o.maxWavefront ?? 128) < 1) throw new Error("diffusion sampler: maxWavefront must be >= 1");
  const rng = new Rng(o.seed ?? 0);
  const sharing = o.sharing ?? { kind: "modulo", budget: 1 };
  const cache = cacheFor(m.config, 1, { sharing, capacity: P + o.maxNewTokens });
  const pick = (l: Float32Array): number => sampleToken(l, o.sampling ?? greedy, rng);
  const fresh = (): Front => {
    const s = newState(m, o.init ?? "zero", rng);
    return { state: s, prev: s, embed: null, iters: 0 };
  };
  // 1) full prefill; its last position decides the first new token
  const pre = noGrad(() =>
    forward(m, Int32Array.from(prompt), { batch: 1, numSteps: o.numSteps, cache }),
  );
  const out = [pick(pre.logits.data.subarray((P - 1) * V))]; // out[i] = token at position P+i
  const iterations: number[] = [o.numSteps];
  let frozen = 0; // wavefront position k sits at P + frozen + k and predicts out[frozen + k + 1]
  let front: Front[] = o.maxNewTokens > 1 ? [fresh()] : [];
  let outerSteps = 0;
  while (front.length > 0) {
    outerSteps++;
    const W = front.length;
    const positions = Int32Array.from({ length: W }, (_, k) => P + frozen + k);
    const places = chunkPlaces(m.config, [...prompt, ...out], P + frozen, W);
    const ctx: ForwardContext = { batch: 1, seqLen: W, positions, places, cache };
    const inputs = out.slice(frozen, frozen + W);
    cache.truncate(P + frozen);
    const logits = noGrad(() => refine(m, ctx, inputs, front, o));
    // decode: each position's guess for the next token
    for (let k = 0; k < W; k++) out[frozen + k + 1] = pick(logits.subarray(k * V, (k + 1) * V));
    // freeze the converged prefix (inputs unchanged, latent change small or depth spent)
    let n = 0;
    while (n < W && converged(front[n], out[frozen + n] === inputs[n], o)) n++;
    for (const f of front.slice(0, n)) iterations.push(f.iters);
    [frozen, front] = [frozen + n, front.slice(n)];
    if (out.slice(0, frozen + 1).some((t) => isStop(t, o.stopTokens))) break;
    // headway: new positions behind the wavefront
    for (let h = 0; h < (o.headway ?? 1); h++) {
      const next = frozen + front.length; // predicts out[next + 1]
      if (next + 1 >= o.maxNewTokens || front.length >= (o.maxWavefront ?? 128)) break;
      front.push(fresh());
    }
  }
  return { tokens: upToStop(out.slice(0, o.maxNewTokens), o.stopTokens), outerSteps, iterations };
}

/** Steps 1-3 of an outer step on the wavefront; returns logits (W, V) and updates `front`. */
function refine(
  m: RavenModel,
  ctx: ForwardContext,
  inputs: number[],
  front: Front[],
  o: DiffusionOptions,
): Float32Array {
  const C = m.config.nEmbd;
  const W = front.length;
  const e = embedInputs(m, Int32Array.from(inputs), ctx); // (1, W, C)
  const eta = o.emaEmbeds ?? 0;
  const s = new Float32Array(W * C);
  front.forEach((f, k) => {
    const row = e.data.subarray(k * C, (k + 1) * C);
    if (eta > 0 && f.embed !== null) {
      for (let c = 0; c < C; c++) row[c] = eta * f.embed[c] + (1 - eta) * row[c];
    }
    f.embed = row.slice();
    const beta = (o.noiseMixing ?? 0) / (1 + f.iters);
    for (let c = 0; c < C; c++) s[k * C + c] = f.state[c];
    if (beta > 0) {
      const noise = newState(m, "random", new Rng(f.iters * 7919 + k));
      for (let c = 0; c < C; c++) s[k * C + c] = (1 - beta) * s[k * C + c] + beta * noise[c];
    }
  });
  let x = tensor(s, [1, W, C]);
  const inner = o.innerRecurrence ?? 4;
  for (let t = 0; t < inner; t++) x = iterateOneStep(m, x, e, t, ctx);
  front.forEach((f, k) => {
    f.prev = f.state;
    f.state = x.data.slice(k * C, (k + 1) * C);
    f.iters += inner;
  });
  return predictFromLatents(m, x, ctx).logits.data;
}

function converged(f: Front, inputStable: boolean, o: DiffusionOptions): boolean {
  if (!inputStable) return false;
  if (f.iters >= o.numSteps) return true;
  let diff = 0;
  let norm = 0;
  for (let c = 0; c < f.state.length; c++) {
    diff += (f.state[c] - f.prev[c]) ** 2;
    norm += f.state[c] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm) < (o.exitThreshold ?? 0.03);
}

/** A fresh (C) state: zero or one draw of the config's state init. */
function newState(m: RavenModel, init: InitState, rng: Rng): Float32Array {
  const C = m.config.nEmbd;
  const mode = m.config.stateInit;
  if (init === "zero" || mode === "zero") return new Float32Array(C);
  const e = tensor(new Float32Array(C), [1, 1, C]);
  return initializeState(m, e, { mode, rng }).data;
}
