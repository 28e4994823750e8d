/**
 * Latent trajectories: the `Trajectory` schema (version 1, the viewer's and report's data, owned
 * here) and its recorder, after the reference notebook `trajectory_analysis.ipynb`:
 *
 *   e = prelude(x); s_0 ~ init(seed); s_i = core(s_{i−1}, e), i = 1 … N   full sequence, no cache
 *   z_i = ln_f(s_i)                                                       the analysed vectors
 *   lens_i = softmax(head(ln_f(coda(ln_f(s_i)))))                         "logit lens" through the coda
 *
 * Per (token, step) it keeps ‖z_i − z_N‖, ‖z_i − z_{i−1}‖/‖z_i‖, cos(z_i, z_N), the lens' top
 * tokens, entropy and KL(lens_N ‖ lens_i). One PCA is fitted on all (step, token) latents of the
 * first seed jointly; each token's coordinates are centred on its own centre of mass. Further
 * seeds (other s_0) are projected with the same basis and centre: path independence.
 * Shapes: T tokens, C width, V vocab, N steps.
 */
import { sequencePlaces } from "../model/abacus.ts";
import type { ForwardContext } from "../model/layers.ts";
import {
  type RavenModel,
  embedInputs,
  forward,
  initializeState,
  iterateOneStep,
  predictFromLatents,
  type StateInitOption,
} from "../model/model.ts";
import { rmsNorm } from "../tensor/ops.ts";
import { Rng } from "../tensor/random.ts";
import { type Tensor, noGrad } from "../tensor/tensor.ts";
import {
  type ClassifyOptions,
  type TailMeasures,
  type TokenClass,
  TOKEN_CLASSES,
  classifyTrajectory,
  defaultClassifyOptions,
} from "./classify.ts";
import * as metrics from "./metrics.ts";
import { fitPca, project } from "./pca.ts";

export const TRAJECTORY_VERSION = 1;

/** One candidate of the logit lens at one step. */
export interface LensEntry {
  id: number;
  p: number; // probability
  text?: string; // with a tokenizer
}

/** The same token from another initial state s_0 (path independence). */
export interface SeedTrajectory {
  seed: number;
  pca: number[][]; // per step, centred on the first seed's centre of this token
  distance: number[]; // ‖z_i − z_N‖ within this run
  finalDistance: number; // ‖z_N − z*_N‖ / ‖z*_N‖, z* = the first seed's final latent
}

/** Every per-step array has `steps` entries: entry k is the state after k + 1 iterations. */
export interface TokenTrajectory {
  index: number; // position in the sequence
  id: number; // token id
  text?: string; // with a tokenizer
  generated: boolean; // produced by greedy generation rather than given
  class: TokenClass;
  period?: number; // orbit
  speed?: number; // slider: mean ‖Δz‖ per step
  relativeSpeed?: number; // slider: mean ‖Δz‖ / ‖z‖ per step
  direction?: number[]; // slider: unit direction in PC coordinates
  measures: TailMeasures; // what the classifier saw
  convergenceStep: number | null; // first step from which ‖Δz‖/‖z‖ < convergenceEps; null: never
  centre: number[]; // centre of mass in PC coordinates, subtracted from `pca`
  pca: number[][]; // (steps, components), centred
  distance: number[]; // ‖z_i − z_N‖
  relativeStep: number[]; // ‖z_i − z_{i−1}‖ / ‖z_i‖ (step 1 against ln_f(s_0))
  cosine: number[]; // cos(z_i, z_N)
  norm: number[]; // ‖z_i‖
  entropy: number[]; // lens entropy, nats
  kl: number[]; // KL(lens_N ‖ lens_i), nats
  lens: LensEntry[][]; // top-k per step, most likely first
  seeds: SeedTrajectory[]; // the other seeds, in `Trajectory.seeds` order
  seedSpread: number; // mean finalDistance over the other seeds (0 with one seed)
}

export interface Trajectory {
  version: typeof TRAJECTORY_VERSION;
  steps: number; // N, recorded steps per token
  firstStep: 1; // per-step arrays start after this many iterations
  model: {
    nEmbd: number;
    nLayersInPrelude: number;
    nLayersInRecurrentBlock: number;
    nLayersInCoda: number;
    vocabSize: number;
    meanRecurrence: number;
    stateInit: string;
  };
  seeds: number[]; // seeds of s_0; the first is the reference run
  convergenceEps: number;
  classifyOptions: ClassifyOptions;
  pca: { components: number; varianceRatio: number[]; fittedOn: string };
  classCounts: Record<TokenClass, number>;
  tokens: TokenTrajectory[];
}

export interface RecordOptions {
  steps: number; // N ≥ 1
  seeds?: readonly number[]; // default [0]
  topK?: number; // lens candidates per step, default 5
  components?: number; // PCA components, default 6
  convergenceEps?: number; // default: the classifier's epsFixed
  classify?: Partial<ClassifyOptions>;
  decode?: (id: number) => string; // token text
  generated?: number; // the last `generated` tokens were produced by generation
}

/** One run from one s_0: raw states s_1 … s_N and latents z_0 … z_N, each (T, C). */
interface Run {
  states: Tensor[];
  latents: Float32Array[];
}

/** Record the trajectory of every token of `ids` (one sequence, T ≤ block size). */
export function recordTrajectory(
  m: RavenModel,
  ids: readonly number[],
  o: RecordOptions,
): Trajectory {
  const N = o.steps;
  if (!(Number.isInteger(N) && N >= 1))
    throw new Error(`recordTrajectory: steps must be ≥ 1, got ${N}`);
  if (ids.length === 0) throw new Error("recordTrajectory: no tokens");
  const seeds = [...(o.seeds ?? [0])];
  const C = m.config.nEmbd;
  const T = ids.length;
  const cls = { ...defaultClassifyOptions, ...o.classify };
  const eps = o.convergenceEps ?? cls.epsFixed;
  const runs = noGrad(() => seeds.map((seed, i) => runLatents(m, ids, N, seed, i === 0)));
  const vec = (run: Run, step: number, t: number): Float32Array =>
    run.latents[step].subarray(t * C, (t + 1) * C);
  // one PCA on all (step ≥ 1, token) latents of the first seed
  const rows: Float32Array[] = [];
  for (let i = 1; i <= N; i++) for (let t = 0; t < T; t++) rows.push(vec(runs[0], i, t));
  const pca = fitPca(rows, o.components ?? 6);
  const lens = noGrad(() => logitLens(m, ids, runs[0].states, o.topK ?? 5, o.decode));
  const tokens = ids.map((id, t): TokenTrajectory => {
    const points = Array.from({ length: N }, (_, k) => vec(runs[0], k + 1, t));
    const proj = points.map((z) => project(pca, z));
    const centre = proj[0].map((_, j) => proj.reduce((a, p) => a + p[j], 0) / N);
    const own = stepMeasures(Array.from({ length: N + 1 }, (_, i) => vec(runs[0], i, t)));
    const c = classifyTrajectory(points, cls);
    const zN = points[N - 1];
    const others = runs.slice(1).map((run, j): SeedTrajectory => {
      const pts = Array.from({ length: N }, (_, k) => vec(run, k + 1, t));
      return {
        seed: seeds[j + 1],
        pca: pts.map((z) => round(project(pca, z).map((x, q) => x - centre[q]))),
        distance: round(pts.map((z) => metrics.distance(z, pts[N - 1]))),
        finalDistance: r6(metrics.distance(pts[N - 1], zN) / Math.max(metrics.norm(zN), 1e-30)),
      };
    });
    return {
      index: t,
      id,
      ...(o.decode ? { text: o.decode(id) } : {}),
      generated: t >= T - (o.generated ?? 0),
      class: c.class,
      ...(c.period !== undefined ? { period: c.period } : {}),
      ...(c.speed !== undefined ? { speed: r6(c.speed) } : {}),
      ...(c.relativeSpeed !== undefined ? { relativeSpeed: r6(c.relativeSpeed) } : {}),
      ...(c.direction
        ? { direction: round(unit(pca.components.map((v) => metrics.dot(v, c.direction ?? v)))) }
        : {}),
      measures: c.measures,
      convergenceStep: metrics.convergenceStep(own.relativeStep, eps),
      centre: round(centre),
      pca: proj.map((p) => round(p.map((x, j) => x - centre[j]))),
      ...roundAll(own),
      ...lens[t],
      seeds: others,
      seedSpread: r6(others.reduce((a, s) => a + s.finalDistance, 0) / Math.max(1, others.length)),
    };
  });
  const classCounts = Object.fromEntries(TOKEN_CLASSES.map((k) => [k, 0])) as Record<
    TokenClass,
    number
  >;
  for (const tok of tokens) classCounts[tok.class]++;
  return {
    version: TRAJECTORY_VERSION,
    steps: N,
    firstStep: 1,
    model: {
      nEmbd: C,
      nLayersInPrelude: m.config.nLayersInPrelude,
      nLayersInRecurrentBlock: m.config.nLayersInRecurrentBlock,
      nLayersInCoda: m.config.nLayersInCoda,
      vocabSize: m.config.vocabSize,
      meanRecurrence: m.config.meanRecurrence,
      stateInit: m.config.stateInit,
    },
    seeds,
    convergenceEps: eps,
    classifyOptions: cls,
    pca: {
      components: pca.components.length,
      varianceRatio: round(pca.varianceRatio),
      fittedOn: `all ${N} steps × ${T} tokens of seed ${seeds[0]}, jointly`,
    },
    classCounts,
    tokens,
  };
}

/** The initial state the model's config asks for, drawn from `seed`. */
export function initFor(m: RavenModel, seed: number): StateInitOption {
  const mode = m.config.stateInit;
  return mode === "zero" ? { mode } : { mode, rng: new Rng(seed) };
}

/** A forward context for one sequence of T tokens at positions 0 … T−1, no cache. */
function contextFor(m: RavenModel, ids: Int32Array): ForwardContext {
  const T = ids.length;
  if (T > m.rope.maxPos)
    throw new Error(`trajectory: ${T} tokens exceed the context (${m.rope.maxPos})`);
  const positions = Int32Array.from({ length: T }, (_, i) => i);
  return { batch: 1, seqLen: T, positions, places: sequencePlaces(m.config, ids, 1, T) };
}

function runLatents(
  m: RavenModel,
  ids: readonly number[],
  N: number,
  seed: number,
  keep: boolean,
): Run {
  const tokens = Int32Array.from(ids);
  const ctx = contextFor(m, tokens);
  const e = embedInputs(m, tokens, ctx); // (1, T, C)
  let s = initializeState(m, e, initFor(m, seed));
  const lnF = (x: Tensor): Float32Array => rmsNorm(x, m.params.lnF, m.config.normEps).data;
  const states: Tensor[] = [];
  const latents = [lnF(s)];
  for (let i = 0; i < N; i++) {
    s = iterateOneStep(m, s, e, i, ctx);
    if (keep) states.push(s);
    latents.push(lnF(s));
  }
  return { states, latents };
}

/** Distance, relative step, cosine and norm per step, from z_0 … z_N of one token. */
function stepMeasures(z: readonly Float32Array[]): {
  distance: number[];
  relativeStep: number[];
  cosine: number[];
  norm: number[];
} {
  const last = z[z.length - 1];
  const steps = z.slice(1);
  return {
    distance: steps.map((x) => metrics.distance(x, last)),
    relativeStep: steps.map((x, k) => metrics.relativeStep(z[k], x)),
    cosine: steps.map((x) => metrics.cosine(x, last)),
    norm: steps.map((x) => metrics.norm(x)),
  };
}

type Lens = Pick<TokenTrajectory, "entropy" | "kl" | "lens">;

/** Decode every step's state through the coda: per token, top-k, entropy and KL to the end. */
function logitLens(
  m: RavenModel,
  ids: readonly number[],
  states: readonly Tensor[],
  k: number,
  decode: ((id: number) => string) | undefined,
): Lens[] {
  const T = ids.length;
  const V = m.config.paddedVocabSize;
  const ctx = contextFor(m, Int32Array.from(ids));
  const logp = (s: Tensor): Float64Array[] => {
    const logits = predictFromLatents(m, s, ctx).logits.data; // (1, T, V)
    return Array.from({ length: T }, (_, t) =>
      metrics.logSoftmax(logits.subarray(t * V, (t + 1) * V)),
    );
  };
  const final = logp(states[states.length - 1]);
  const out: Lens[] = ids.map(() => ({ entropy: [], kl: [], lens: [] }));
  for (const s of states) {
    logp(s).forEach((lp, t) => {
      out[t].entropy.push(r6(metrics.entropy(lp)));
      out[t].kl.push(r6(metrics.kl(final[t], lp)));
      out[t].lens.push(
        metrics
          .topK(lp, k)
          .map((c) => ({ id: c.id, p: r6(c.p), ...(decode ? { text: decode(c.id) } : {}) })),
      );
    });
  }
  return out;
}

/**
 * Greedy continuation by full recompute (no cache): each new token is the argmax of a forward
 * with `steps` recurrences from the seed's s_0. Returns prompt + `n` new ids.
 */
export function generateGreedy(
  m: RavenModel,
  prompt: readonly number[],
  n: number,
  steps: number,
  seed: number,
): number[] {
  const ids = [...prompt];
  const V = m.config.paddedVocabSize;
  noGrad(() => {
    for (let i = 0; i < n && ids.length < m.rope.maxPos; i++) {
      const out = forward(m, Int32Array.from(ids), {
        batch: 1,
        numSteps: steps,
        init: initFor(m, seed),
      });
      const last = out.logits.data.subarray((ids.length - 1) * V, ids.length * V);
      let best = 0;
      for (let v = 1; v < m.config.vocabSize; v++) if (last[v] > last[best]) best = v;
      ids.push(best);
    }
  });
  return ids;
}

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return n > 0 ? v.map((x) => x / n) : v;
}

/** Six significant digits: keeps trajectory.json small without losing what plots can show. */
function r6(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : x;
}

function round(xs: readonly number[]): number[] {
  return xs.map(r6);
}

function roundAll<K extends string>(o: Record<K, number[]>): Record<K, number[]> {
  const out = {} as Record<K, number[]>;
  for (const key of Object.keys(o) as K[]) out[key] = round(o[key]);
  return out;
}
