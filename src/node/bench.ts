/**
 * Benchmarks behind `loom bench train|generate|gemm`, on random weights. Every bench validates
 * before it times (a fast wrong answer is caught), warms up, then reports the median and the
 * spread (min, max) of its repetitions, with the process's peak RSS.
 *
 * - train: one full step = zero grads, forward (n no-grad + k grad recurrences, cross-entropy),
 *   backward, AdamW. Validated: finite loss, a finite gradient for every parameter; the loss on
 *   the repeated batch must fall. `profile` adds a per-kernel breakdown of extra steps.
 * - generate: batch-1 cached greedy decoding, s_0 = 0. Validated: the first tokens equal the
 *   argmax of uncached full forwards. tokensPerSec counts the N-1 decoded tokens after the
 *   prefill (whose token is the first of N).
 * - gemm: the GEMM shapes one training step calls (recorded from a real step), each checked
 *   against gemmNaive on two sub-blocks, then timed; stepGemmMs = Σ calls·time, the GEMM-only
 *   lower bound of a step.
 */
import type { Backend, GemmShape } from "../backend/backend.ts";
import { gemmNaive } from "../backend/js/gemm.ts";
import { backend, useBackend } from "../backend/select.ts";
import { generate } from "../generate/generate.ts";
import { namedParameters } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import { type RavenModel, forward, initModel } from "../model/model.ts";
import { Rng } from "../tensor/random.ts";
import { backward, noGrad } from "../tensor/tensor.ts";
import { type Param, makeOptimizer } from "../train/optim.ts";

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error("spread: no samples");
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1] };
}

/** Peak resident set of this process so far, MiB. */
export function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function backendInfo(): { backend: string; threads: number; isa?: string } {
  const be = backend();
  const isa = (be as Backend & { isa?: unknown }).isa;
  return { backend: be.name, threads: be.threads, ...(typeof isa === "string" ? { isa } : {}) };
}

// ---------------------------------------------------------------------------------------------
// kernel profiler: a Backend that times every call of the one it wraps

type Kernel = Exclude<keyof Backend, "name" | "threads">;
const kernels: readonly Kernel[] = [
  "gemm",
  "attentionForward",
  "attentionBackward",
  "rmsNormForward",
  "rmsNormBackward",
  "rope",
  "addRows",
  "swigluForward",
  "swigluBackward",
  "crossEntropy",
  "adamw",
];

export interface KernelStats {
  ms: number;
  calls: number;
}

/** Times every kernel call into `phase`'s bucket; also records each GEMM shape's call count. */
export class Profiler {
  phase = "other";
  /** Wall ms spent in each phase (between setPhase calls). */
  readonly wall = new Map<string, number>();
  private since = performance.now();
  readonly byPhase = new Map<string, Map<Kernel, KernelStats>>();
  readonly gemmShapes = new Map<string, { shape: GemmShape; calls: number }>();
  gemmFlops = 0;

  setPhase(p: string): void {
    const now = performance.now();
    this.wall.set(this.phase, (this.wall.get(this.phase) ?? 0) + now - this.since);
    [this.phase, this.since] = [p, now];
  }

  add(kernel: Kernel, ms: number): void {
    let m = this.byPhase.get(this.phase);
    if (m === undefined) {
      m = new Map<Kernel, KernelStats>();
      this.byPhase.set(this.phase, m);
    }
    const s = m.get(kernel) ?? { ms: 0, calls: 0 };
    m.set(kernel, { ms: s.ms + ms, calls: s.calls + 1 });
  }

  gemm(s: GemmShape): void {
    const key = `${s.m}x${s.k}x${s.n}${s.transA ? "tA" : ""}${s.transB ? "tB" : ""}${s.accumulate ? "+" : ""}`;
    const e = this.gemmShapes.get(key);
    if (e) e.calls++;
    else this.gemmShapes.set(key, { shape: { ...s }, calls: 1 });
    this.gemmFlops += 2 * s.m * s.n * s.k;
  }

  /** `inner` with every kernel call timed. */
  wrap(inner: Backend): Backend {
    const timed =
      <A extends unknown[]>(k: Kernel, fn: (...args: A) => void) =>
      (...args: A): void => {
        const t0 = performance.now();
        fn(...args);
        this.add(k, performance.now() - t0);
      };
    const out: Record<string, unknown> = { name: inner.name, threads: inner.threads };
    for (const k of kernels) {
      const fn = (inner[k] as (...a: unknown[]) => void).bind(inner);
      out[k] =
        k === "gemm"
          ? (...a: unknown[]) => {
              this.gemm(a[3] as GemmShape);
              timed(k, fn)(...a);
            }
          : timed(k, fn);
    }
    return out as unknown as Backend;
  }
}

/** Run fn on a profiled copy of the active backend. */
export function withProfiler<T>(prof: Profiler, fn: () => T): T {
  const inner = backend();
  useBackend(prof.wrap(inner));
  try {
    return fn();
  } finally {
    useBackend(inner);
  }
}

// ---------------------------------------------------------------------------------------------
// train

export interface TrainBenchOptions {
  batch: number;
  seq: number;
  noGradSteps: number;
  gradSteps: number;
  reps: number;
  warmup: number;
  profile?: boolean;
  seed?: number;
}

/** Per phase of a profiled step: wall ms, kernel ms by kernel, and the rest (JS-side work). */
export interface PhaseProfile {
  ms: number;
  kernels: Record<string, { ms: number; calls: number }>;
  otherMs: number; // wall minus kernels: allocation, tape, copies, embedding, concat, adds, GC
}

export interface TrainProfile {
  steps: number; // profiled steps (averaged)
  stepMs: number;
  phases: Record<string, PhaseProfile>; // forward, backward, optimizer
  gemmMs: number;
  gemmGflops: number; // achieved inside the step
  attentionMs: number;
  otherKernelMs: number; // rmsnorm, rope, swiglu, cross-entropy, adamw
  jsMs: number; // step minus all kernels
}

export interface TrainBenchResult {
  stepMs: number;
  stepMsMin: number;
  stepMsMax: number;
  reps: number;
  backend: string;
  threads: number;
  isa?: string;
  lossFirst: number;
  lossLast: number;
  tokensPerStep: number;
  peakRssMB: number;
  baseRssMB: number;
  profile?: TrainProfile;
}

interface TrainRig {
  step(prof?: Profiler): number; // returns the loss
  model: RavenModel;
}

function trainRig(config: ModelConfig, o: TrainBenchOptions): TrainRig {
  const model = initModel(config, new Rng(o.seed ?? 0));
  const rng = new Rng((o.seed ?? 0) + 1);
  const n = o.batch * o.seq;
  const ids = Int32Array.from({ length: n }, () => rng.int(config.vocabSize));
  // targets: the next token, cyclic within each row
  const labels = Int32Array.from(ids, (_, i) => {
    const [b, t] = [Math.floor(i / o.seq), i % o.seq];
    return ids[b * o.seq + ((t + 1) % o.seq)];
  });
  const named = namedParameters(model.params);
  const params: Param[] = named.map(([name, t]) => ({
    name,
    data: t.data,
    shape: t.shape,
    get grad() {
      return t.grad;
    },
  }));
  const opt = makeOptimizer("adamw", {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    lrPeak: 1e-3,
  });
  const state = opt.init(params);
  const numSteps = { noGrad: o.noGradSteps, withGrad: o.gradSteps };
  const step = (prof?: Profiler): number => {
    const phase = (p: string): void => prof?.setPhase(p);
    phase("forward");
    for (const [, t] of named) t.grad = null;
    const out = forward(model, ids, { batch: o.batch, numSteps, labels });
    const loss = out.loss;
    if (loss === null) throw new Error("bench train: forward returned no loss");
    const value = loss.data[0];
    phase("backward");
    backward(loss, { release: true }); // as the trainer: the activations feed the next step
    phase("optimizer");
    opt.step(params, state, 1e-3);
    phase("other");
    return value;
  };
  return { step, model };
}

/** Throws unless the loss is finite and every parameter has a finite, non-zero gradient. */
function validateStep(rig: TrainRig, loss: number): void {
  if (!Number.isFinite(loss)) throw new Error(`bench train: loss is ${loss}`);
  for (const [name, t] of namedParameters(rig.model.params)) {
    const g = t.grad;
    if (g === null) throw new Error(`bench train: ${name} got no gradient`);
    let sq = 0;
    for (const x of g) sq += x * x;
    if (!Number.isFinite(sq)) throw new Error(`bench train: gradient of ${name} is not finite`);
    if (sq === 0 && !name.includes("qk_bias")) {
      throw new Error(`bench train: gradient of ${name} is all zero`);
    }
  }
}

export function benchTrain(config: ModelConfig, o: TrainBenchOptions): TrainBenchResult {
  const baseRssMB = peakRssMB();
  const rig = trainRig(config, o);
  const lossFirst = rig.step(); // the validation step, not timed; its gradients are still set
  validateStep(rig, lossFirst);
  for (let i = 0; i < o.warmup; i++) rig.step();
  const times: number[] = [];
  let lossLast = lossFirst;
  for (let i = 0; i < o.reps; i++) {
    const t0 = performance.now();
    lossLast = rig.step();
    times.push(performance.now() - t0);
  }
  if (!Number.isFinite(lossLast) || (o.reps + o.warmup >= 3 && !(lossLast < lossFirst))) {
    throw new Error(`bench train: the loss did not fall on a repeated batch (${lossFirst} -> ${lossLast})`); // prettier-ignore
  }
  const s = spread(times);
  const result: TrainBenchResult = {
    stepMs: s.median,
    stepMsMin: s.min,
    stepMsMax: s.max,
    reps: o.reps,
    ...backendInfo(),
    lossFirst,
    lossLast,
    tokensPerStep: o.batch * o.seq,
    peakRssMB: peakRssMB(),
    baseRssMB,
  };
  if (o.profile === true) result.profile = profileTrain(rig, Math.max(1, Math.min(3, o.reps)));
  return result;
}

function profileTrain(rig: TrainRig, steps: number): TrainProfile {
  const prof = new Profiler();
  let total = 0;
  withProfiler(prof, () => {
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      rig.step(prof);
      total += performance.now() - t0;
    }
  });
  const per = (x: number): number => x / steps;
  const phases: Record<string, PhaseProfile> = {};
  let kernelMs = 0;
  let gemmMs = 0;
  let attentionMs = 0;
  for (const name of ["forward", "backward", "optimizer"]) {
    const ks = prof.byPhase.get(name) ?? new Map<Kernel, KernelStats>();
    const out: Record<string, { ms: number; calls: number }> = {};
    let sum = 0;
    for (const [k, v] of ks) {
      out[k] = { ms: per(v.ms), calls: per(v.calls) };
      sum += v.ms;
      if (k === "gemm") gemmMs += v.ms;
      if (k.startsWith("attention")) attentionMs += v.ms;
    }
    kernelMs += sum;
    const ms = per(prof.wall.get(name) ?? 0);
    phases[name] = { ms, kernels: out, otherMs: ms - per(sum) };
  }
  return {
    steps,
    stepMs: per(total),
    phases,
    gemmMs: per(gemmMs),
    gemmGflops: prof.gemmFlops / gemmMs / 1e6,
    attentionMs: per(attentionMs),
    otherKernelMs: per(kernelMs - gemmMs - attentionMs),
    jsMs: per(total - kernelMs),
  };
}

/** The readable form of a TrainProfile: one line per phase, then the split of the step. */
export function formatTrainProfile(p: TrainProfile): string[] {
  const f = (x: number): string => x.toFixed(1);
  const lines = [`profile (mean of ${p.steps} steps, ${f(p.stepMs)} ms/step):`];
  for (const [name, ph] of Object.entries(p.phases)) {
    const ks = Object.entries(ph.kernels)
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([k, v]) => `${k} ${f(v.ms)} (${Math.round(v.calls)} calls)`)
      .join(", ");
    lines.push(`  ${name.padEnd(9)} ${f(ph.ms).padStart(7)} ms: ${ks}; rest (JS) ${f(ph.otherMs)}`);
  }
  const pct = (x: number): string => `${((100 * x) / p.stepMs).toFixed(0)}%`;
  lines.push(
    `  split: gemm ${f(p.gemmMs)} ms (${pct(p.gemmMs)}, ${p.gemmGflops.toFixed(0)} GFLOP/s), ` +
      `attention ${f(p.attentionMs)} ms (${pct(p.attentionMs)}), other kernels ${f(p.otherKernelMs)} ms ` +
      `(${pct(p.otherKernelMs)}), JS-side ${f(p.jsMs)} ms (${pct(p.jsMs)})`,
  );
  return lines;
}

/** The GEMM shapes (with calls per step) of one training step at these options. */
export function trainGemmShapes(
  config: ModelConfig,
  o: Omit<TrainBenchOptions, "reps" | "warmup">,
): { shape: GemmShape; calls: number }[] {
  const rig = trainRig(config, { ...o, reps: 0, warmup: 0 });
  const prof = new Profiler();
  withProfiler(prof, () => rig.step());
  return [...prof.gemmShapes.values()].sort(
    (a, b) => b.calls * flops(b.shape) - a.calls * flops(a.shape),
  );
}

const flops = (s: GemmShape): number => 2 * s.m * s.n * s.k;

// ---------------------------------------------------------------------------------------------
// generate

export interface GenerateBenchOptions {
  promptLen: number;
  newTokens: number; // >= 2: the prefill's token plus N-1 decoded
  steps: number; // r
  reps: number;
  warmup: number;
  seed?: number;
}

export interface GenerateBenchResult {
  tokensPerSec: number;
  tokensPerSecMin: number;
  tokensPerSecMax: number;
  prefillMs: number;
  reps: number;
  backend: string;
  threads: number;
  isa?: string;
  tokens: number[];
  peakRssMB: number;
  baseRssMB: number;
}

export async function benchGenerate(
  config: ModelConfig,
  o: GenerateBenchOptions,
): Promise<GenerateBenchResult> {
  const baseRssMB = peakRssMB();
  if (o.newTokens < 2) throw new Error("bench generate: new tokens must be >= 2");
  if (o.promptLen < 1) throw new Error("bench generate: prompt length must be >= 1");
  const total = o.promptLen + o.newTokens;
  if (total > config.blockSize) {
    throw new Error(`bench generate: prompt + new tokens = ${total} > block_size ${config.blockSize}`); // prettier-ignore
  }
  const model = initModel(config, new Rng(o.seed ?? 0));
  const prompt = Array.from({ length: o.promptLen }, (_, i) => (i * 7 + 3) % config.vocabSize);
  const run = async (n: number): Promise<{ tokens: number[]; prefill: number; decode: number }> => {
    const tokens: number[] = [];
    const t0 = performance.now();
    let t1 = t0;
    const opts = { maxNewTokens: n, numSteps: o.steps, init: "zero" as const };
    for await (const r of generate(model, [prompt], opts)) {
      if (r.index === 0) t1 = performance.now();
      tokens.push(r.token);
    }
    return { tokens, prefill: t1 - t0, decode: performance.now() - t1 };
  };
  // validate: cached tokens = argmax of uncached full forwards
  const first = await run(Math.min(o.newTokens, 4));
  validateGreedy(model, prompt, first.tokens, o.steps);
  for (let i = 0; i < o.warmup; i++) await run(Math.min(o.newTokens, 8));
  const prefill: number[] = [];
  const rate: number[] = [];
  let tokens: number[] = [];
  for (let i = 0; i < o.reps; i++) {
    const r = await run(o.newTokens);
    prefill.push(r.prefill);
    rate.push((o.newTokens - 1) / (r.decode / 1000));
    tokens = r.tokens;
  }
  if (tokens.slice(0, first.tokens.length).join() !== first.tokens.join()) {
    throw new Error("bench generate: repeated runs generated different tokens");
  }
  const s = spread(rate);
  return {
    tokensPerSec: s.median,
    tokensPerSecMin: s.min,
    tokensPerSecMax: s.max,
    prefillMs: spread(prefill).median,
    reps: o.reps,
    ...backendInfo(),
    tokens,
    peakRssMB: peakRssMB(),
    baseRssMB,
  };
}

function validateGreedy(m: RavenModel, prompt: number[], tokens: number[], r: number): void {
  const V = m.config.paddedVocabSize;
  const seq = [...prompt];
  for (const [i, tok] of tokens.entries()) {
    const ids = Int32Array.from(seq);
    const { logits } = noGrad(() => forward(m, ids, { batch: 1, numSteps: r }));
    const last = logits.data.subarray((seq.length - 1) * V, seq.length * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
    if (best !== tok) {
      throw new Error(`bench generate: cached token ${i} is ${tok}, uncached argmax is ${best}`);
    }
    seq.push(tok);
  }
}

// ---------------------------------------------------------------------------------------------
// gemm

export interface GemmBenchRow {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  calls: number; // per training step
  gflops: number; // best repetition
  gflopsMedian: number;
  ms: number; // best time per call
}

/** Checks native-vs-naive on the top-left and bottom-right blocks of C at the full shape. */
export function validateGemm(be: Backend, s: GemmShape, rng: Rng, block = 96): void {
  const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.uniform() - 0.5); // prettier-ignore
  const a = rand(s.m * s.k);
  const b = rand(s.k * s.n);
  const c0 = rand(s.m * s.n);
  const c = c0.slice();
  be.gemm(c, a, b, s);
  const opA = (i: number, p: number): number => (s.transA ? a[p * s.m + i] : a[i * s.k + p]);
  const opB = (p: number, j: number): number => (s.transB ? b[j * s.k + p] : b[p * s.n + j]);
  const bm = Math.min(block, s.m);
  const bn = Math.min(block, s.n);
  for (const [i0, j0] of [
    [0, 0],
    [s.m - bm, s.n - bn],
  ]) {
    // the block as its own plain problem: op(A)[i0:i0+bm, :] · op(B)[:, j0:j0+bn]
    const subA = Float32Array.from({ length: bm * s.k }, (_, x) => opA(i0 + Math.floor(x / s.k), x % s.k)); // prettier-ignore
    const subB = Float32Array.from({ length: s.k * bn }, (_, x) => opB(Math.floor(x / bn), j0 + (x % bn))); // prettier-ignore
    const want = new Float32Array(bm * bn);
    for (let i = 0; i < bm; i++) for (let j = 0; j < bn; j++) want[i * bn + j] = c0[(i0 + i) * s.n + j0 + j]; // prettier-ignore
    const sub = { m: bm, n: bn, k: s.k, transA: false, transB: false, accumulate: s.accumulate };
    gemmNaive(want, subA, subB, sub);
    const tol = 1e-5 * Math.sqrt(s.k) + 1e-5;
    for (let i = 0; i < bm; i++) {
      for (let j = 0; j < bn; j++) {
        const got = c[(i0 + i) * s.n + j0 + j];
        if (!(Math.abs(got - want[i * bn + j]) <= tol * Math.max(1, Math.abs(want[i * bn + j])))) {
          throw new Error(
            `bench gemm: ${be.name} gemm wrong at (${i0 + i}, ${j0 + j}) of ${JSON.stringify(s)}: ${got} vs ${want[i * bn + j]}`,
          );
        }
      }
    }
  }
}

export function benchGemmShape(
  be: Backend,
  s: GemmShape,
  calls: number,
  reps: number,
  minMs: number,
  rng: Rng,
): GemmBenchRow {
  const a = Float32Array.from({ length: s.m * s.k }, () => rng.uniform() - 0.5);
  const b = Float32Array.from({ length: s.k * s.n }, () => rng.uniform() - 0.5);
  const c = new Float32Array(s.m * s.n);
  for (let i = 0; i < 3; i++) be.gemm(c, a, b, s); // warm-up
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    let n = 0;
    const t0 = performance.now();
    do {
      be.gemm(c, a, b, s);
      n++;
    } while (performance.now() - t0 < minMs);
    times.push((performance.now() - t0) / n);
  }
  const t = spread(times);
  const gf = (ms: number): number => flops(s) / ms / 1e6;
  return { ...s, calls, gflops: gf(t.min), gflopsMedian: gf(t.median), ms: t.min };
}
