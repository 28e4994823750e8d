/**
 * Per-token adaptive exit: the reference's exit evaluators (generate_with_adaptive_compute), as a
 * closed set. After recurrence step t a criterion turns the state s_t (and, for the
 * distribution-based ones, the last position's logits) into one value per row; a row exits when
 * the value passes the threshold (value < threshold; argmax-stability: value >= threshold).
 *
 *   entropy-diff      |H(p_t) - H(p_{t-1})|, H_0 := 100, H(p) = -Σ p·log(p + 1e-10)
 *   latent-diff       mean over positions of ||s_t - s_{t-1}|| / ||s_t||, s_{-1} = s_0 (raw states)
 *   kl                KL(p_{t-1} || p_t) = Σ p_{t-1}(log p_{t-1} - log p_t), p_{-1} uniform
 *   minp-kl           the same after replacing probs < 0.1·max by 1/V and renormalising
 *   argmax-stability  consecutive checks with an unchanged argmax (exit when >= threshold)
 *   cosine            mean over positions of 1 - cos(s_t, s_{t-1})
 *   none              never exits
 *
 * Shape letters: B batch, T positions, C width, V vocab.
 */

export type ExitName =
  "none" | "entropy-diff" | "latent-diff" | "kl" | "minp-kl" | "argmax-stability" | "cosine";

export const exitNames: readonly ExitName[] = [
  "none",
  "entropy-diff",
  "latent-diff",
  "kl",
  "minp-kl",
  "argmax-stability",
  "cosine",
];

/** The reference's "auto" thresholds (HEAD; the paper and [MIN-0209] use kl 5e-4). */
export function defaultThreshold(name: ExitName): number {
  switch (name) {
    case "none":
      return 0;
    case "entropy-diff":
      return 1e-3;
    case "latent-diff":
      return 0.03;
    case "kl":
      return 1e-3;
    case "minp-kl":
      return 1e-5;
    case "argmax-stability":
      return 5;
    case "cosine":
      return 1e-3;
    default:
      return name satisfies never;
  }
}

/** What a criterion sees after a step. */
export interface ExitView {
  batch: number; // B
  seqLen: number; // T
  width: number; // C
  state: Float32Array; // (B, T, C) s_t, raw
  prev: Float32Array; // (B, T, C) s_{t-1} (s_0 before the first step)
  logits: Float32Array | null; // (B, V) of the last position, when `needsLogits`
  vocab: number; // V
  pads?: Int32Array | undefined; // (B) left pads excluded from position means
}

export interface ExitCheck {
  exit: boolean[]; // (B)
  values: Float64Array; // (B)
}

export interface ExitCriterion {
  readonly name: ExitName;
  readonly threshold: number;
  /** Whether check() needs the decoded logits (runs the coda every check). */
  readonly needsLogits: boolean;
  /** Reset the per-row memory before a token's recurrence (B rows). */
  init(batch: number): void;
  check(view: ExitView): ExitCheck;
}

export function makeExitCriterion(name: ExitName, threshold?: number): ExitCriterion {
  const thr = threshold ?? defaultThreshold(name);
  switch (name) {
    case "none":
      return stateless(name, thr, false, (v) => new Float64Array(v.batch).fill(Infinity));
    case "latent-diff":
      return stateless(name, thr, false, (v) => positionMean(v, relativeChange));
    case "cosine":
      return stateless(name, thr, false, (v) => positionMean(v, cosineDistance));
    case "entropy-diff":
      return entropyDiff(thr);
    case "kl":
    case "minp-kl":
      return klCriterion(name, thr);
    case "argmax-stability":
      return argmaxStability(thr);
    default:
      return name satisfies never;
  }
}

function stateless(
  name: ExitName,
  threshold: number,
  needsLogits: boolean,
  values: (v: ExitView) => Float64Array,
): ExitCriterion {
  return {
    name,
    threshold,
    needsLogits,
    init: () => undefined,
    check: (v) => below(values(v), threshold),
  };
}

function below(values: Float64Array, threshold: number): ExitCheck {
  return { exit: Array.from(values, (x) => x < threshold), values };
}

/** Per row: mean over the row's (non-pad) positions of f(s_t, s_{t-1}) on C-vectors. */
function positionMean(
  v: ExitView,
  f: (a: Float32Array, b: Float32Array, ao: number, C: number) => number,
): Float64Array {
  const { batch: B, seqLen: T, width: C } = v;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const from = v.pads?.[b] ?? 0;
    let sum = 0;
    for (let t = from; t < T; t++) sum += f(v.state, v.prev, (b * T + t) * C, C);
    out[b] = sum / (T - from);
  }
  return out;
}

/** ||a - b|| / ||a||. */
function relativeChange(a: Float32Array, b: Float32Array, o: number, C: number): number {
  let diff = 0;
  let norm = 0;
  for (let c = o; c < o + C; c++) {
    diff += (a[c] - b[c]) ** 2;
    norm += a[c] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm);
}

/** 1 - cos(a, b); a zero vector counts as orthogonal. */
function cosineDistance(a: Float32Array, b: Float32Array, o: number, C: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let c = o; c < o + C; c++) {
    dot += a[c] * b[c];
    na += a[c] ** 2;
    nb += b[c] ** 2;
  }
  return na > 0 && nb > 0 ? 1 - dot / Math.sqrt(na * nb) : 1;
}

/** log softmax of row b of logits (B, V), in float64. */
export function logSoftmaxRow(logits: Float32Array, b: number, V: number): Float64Array {
  const out = new Float64Array(V);
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[b * V + i]);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[b * V + i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < V; i++) out[i] = logits[b * V + i] - lse;
  return out;
}

function needLogits(v: ExitView): Float32Array {
  if (v.logits === null) throw new Error("exit criterion: logits are required");
  return v.logits;
}

function entropyDiff(threshold: number): ExitCriterion {
  let entropy = new Float64Array(0);
  return {
    name: "entropy-diff",
    threshold,
    needsLogits: true,
    init: (B) => {
      entropy = new Float64Array(B).fill(100);
    },
    check: (v) => {
      const logits = needLogits(v);
      const values = new Float64Array(v.batch);
      for (let b = 0; b < v.batch; b++) {
        const lp = logSoftmaxRow(logits, b, v.vocab);
        let h = 0;
        for (const l of lp) h -= Math.exp(l) * Math.log(Math.exp(l) + 1e-10);
        values[b] = Math.abs(h - entropy[b]);
        entropy[b] = h;
      }
      return below(values, threshold);
    },
  };
}

function klCriterion(name: "kl" | "minp-kl", threshold: number): ExitCriterion {
  let prev: Float64Array[] = [];
  return {
    name,
    threshold,
    needsLogits: true,
    init: (B) => {
      prev = [];
      for (let b = 0; b < B; b++) prev.push(new Float64Array(0));
    },
    check: (v) => {
      const logits = needLogits(v);
      const V = v.vocab;
      const values = new Float64Array(v.batch);
      for (let b = 0; b < v.batch; b++) {
        let lp = logSoftmaxRow(logits, b, V);
        if (name === "minp-kl") lp = minpLogProbs(lp);
        const before = prev[b].length > 0 ? prev[b] : new Float64Array(V).fill(-Math.log(V));
        let kl = 0;
        for (let i = 0; i < V; i++) kl += Math.exp(before[i]) * (before[i] - lp[i]);
        values[b] = kl;
        prev[b] = lp;
      }
      return below(values, threshold);
    },
  };
}

/** probs < 0.1·max replaced by 1/V, renormalised; as log-probs. */
function minpLogProbs(lp: Float64Array): Float64Array {
  const V = lp.length;
  const p = lp.map((l) => Math.exp(l));
  const max = Math.max(...p);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    if (p[i] < 0.1 * max) p[i] = 1 / V;
    sum += p[i];
  }
  return p.map((x) => Math.log(x / sum));
}

function argmaxStability(threshold: number): ExitCriterion {
  let stable = new Float64Array(0);
  let argmax = new Int32Array(0);
  return {
    name: "argmax-stability",
    threshold,
    needsLogits: true,
    init: (B) => {
      stable = new Float64Array(B);
      argmax = new Int32Array(B).fill(-1);
    },
    check: (v) => {
      const logits = needLogits(v);
      for (let b = 0; b < v.batch; b++) {
        let best = 0;
        for (let i = 1; i < v.vocab; i++) {
          if (logits[b * v.vocab + i] > logits[b * v.vocab + best]) best = i;
        }
        stable[b] = best === argmax[b] ? stable[b] + 1 : 0;
        argmax[b] = best;
      }
      const values = stable.slice();
      return { exit: Array.from(values, (x) => x >= threshold), values };
    },
  };
}
