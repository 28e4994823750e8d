/**
 * Test-time-scaling evaluation: greedy decoding of each example's answer at a fixed number of
 * recurrences r (or with a per-token exit criterion capped at r), scored by exact match, reported
 * per (r, difficulty) and for all examples together.
 *
 * Decoding runs the whole prefix through the model for every new token (answers are short),
 * batching examples whose prompts have the same length. A row stops as soon as it emits <eos>, or
 * as soon as its output can no longer match the answer (exact match is already lost, so the rest
 * of its decoding cannot change the score).
 */
import { type Example, encodePrompt } from "../data/example.ts";
import { type CharTokenizer, EOS_ID } from "../data/tokenizer.ts";
import type { ForwardContext } from "../model/layers.ts";
import {
  type RavenModel,
  type StateInitOption,
  embedInputs,
  initializeState,
  iterateOneStep,
  predictFromLatents,
} from "../model/model.ts";
import { Rng } from "../tensor/random.ts";
import { type Tensor, noGrad } from "../tensor/tensor.ts";

/** Per-token exit criteria (huginn-reference §4.3); "none" always runs r steps. */
export type ExitCriterion =
  "none" | "kl" | "minp-kl" | "entropy-diff" | "latent-diff" | "cosine" | "argmax-stability";

export const EXIT_CRITERIA: readonly ExitCriterion[] = [
  "none",
  "kl",
  "minp-kl",
  "entropy-diff",
  "latent-diff",
  "cosine",
  "argmax-stability",
];

/** The reference's "auto" thresholds (HEAD). */
export const DEFAULT_EXIT_THRESHOLD: Record<ExitCriterion, number> = {
  none: 0,
  kl: 1e-3,
  "minp-kl": 1e-5,
  "entropy-diff": 1e-3,
  "latent-diff": 0.03,
  cosine: 1e-3,
  "argmax-stability": 5,
};

export interface EvalOptions {
  /** Recurrence counts to evaluate (the cap when an exit criterion is set). */
  steps: readonly number[];
  exit?: ExitCriterion;
  exitThreshold?: number;
  /** Rows per forward (default 64). */
  batchSize?: number;
  /** Seed of the random initial states (when the config's state_init is random). */
  seed?: number;
  /** Called after each (r, batch) with the examples done so far at this r. */
  onProgress?: (r: number, done: number, total: number) => void;
}

/** One row of the results: `difficulty` null = every example together. */
export interface EvalRow {
  steps: number;
  difficulty: number | null;
  accuracy: number;
  count: number;
  meanSteps: number;
}

/** Result of one example at one r. */
export interface ExampleResult {
  correct: boolean;
  prediction: string;
  /** Recurrences used, summed over the generated tokens, and the number of tokens. */
  stepsUsed: number;
  tokens: number;
}

/**
 * Accuracy vs r: for each r of `o.steps`, one row per difficulty (when the examples have one) and
 * one row with difficulty null over all examples.
 */
export function evaluate(
  model: RavenModel,
  tok: CharTokenizer,
  examples: readonly Example[],
  o: EvalOptions,
): EvalRow[] {
  const rows: EvalRow[] = [];
  for (const r of o.steps) {
    const results = evaluateAt(model, tok, examples, r, o);
    rows.push(...summarize(examples, results, r));
  }
  return rows;
}

/** Per-example results at r recurrences. */
export function evaluateAt(
  model: RavenModel,
  tok: CharTokenizer,
  examples: readonly Example[],
  r: number,
  o: Omit<EvalOptions, "steps">,
): ExampleResult[] {
  if (!Number.isInteger(r) || r < 1) throw new RangeError(`evaluate: steps must be >= 1, got ${r}`);
  const out: ExampleResult[] = new Array<ExampleResult>(examples.length);
  const rng = new Rng(o.seed ?? 0);
  const groups = new Map<number, number[]>();
  const prompts = examples.map((ex) => encodePrompt(tok, ex.prompt));
  prompts.forEach((p, i) => {
    const g = groups.get(p.length) ?? [];
    g.push(i);
    groups.set(p.length, g);
  });
  const bs = o.batchSize ?? 64;
  let done = 0;
  for (const [, members] of [...groups].sort((a, b) => a[0] - b[0])) {
    for (let start = 0; start < members.length; start += bs) {
      const idx = members.slice(start, start + bs);
      const answers = idx.map((i) => tok.encode(examples[i].answer));
      const res = decodeBatch(
        model,
        idx.map((i) => prompts[i]),
        answers,
        r,
        o,
        rng,
      );
      idx.forEach((i, j) => {
        out[i] = { ...res[j], prediction: tok.decode(res[j].ids) };
      });
      done += idx.length;
      o.onProgress?.(r, done, examples.length);
    }
  }
  return out;
}

interface RowResult {
  correct: boolean;
  ids: number[];
  stepsUsed: number;
  tokens: number;
}

/** Greedy decoding of a batch of equal-length prompts at r recurrences. */
function decodeBatch(
  model: RavenModel,
  prompts: number[][],
  answers: number[][],
  r: number,
  o: Omit<EvalOptions, "steps">,
  rng: Rng,
): RowResult[] {
  const B = prompts.length;
  const V = model.config.vocabSize;
  const rows: RowResult[] = prompts.map(() => ({
    correct: false,
    ids: [],
    stepsUsed: 0,
    tokens: 0,
  }));
  const active = prompts.map(() => true);
  const seqs = prompts.map((p) => [...p]);
  const maxNew = Math.max(...answers.map((a) => a.length)) + 1;
  for (let t = 0; t < maxNew && active.some(Boolean); t++) {
    const T = seqs[0].length;
    if (T > model.config.blockSize) break;
    const ids = Int32Array.from(seqs.flat());
    const { logits, stepsUsed } = runWithExit(model, ids, B, T, r, o, rng);
    const Vp = logits.shape[2];
    for (let b = 0; b < B; b++) {
      if (!active[b]) continue;
      const off = (b * T + T - 1) * Vp;
      let best = 0;
      for (let v = 1; v < V; v++) if (logits.data[off + v] > logits.data[off + best]) best = v;
      const row = rows[b];
      row.stepsUsed += stepsUsed[b];
      row.tokens += 1;
      const ans = answers[b];
      if (best === EOS_ID) {
        row.correct = row.ids.length === ans.length;
        active[b] = false;
        continue;
      }
      row.ids.push(best);
      const pos = row.ids.length - 1;
      if (pos >= ans.length || ans[pos] !== best) active[b] = false; // exact match lost
    }
    // finished rows keep decoding along (their tokens are ignored) so the batch stays rectangular
    for (let b = 0; b < B; b++) seqs[b].push(rows[b].ids[rows[b].ids.length - 1] ?? EOS_ID);
  }
  return rows;
}

/**
 * One forward of (B, T) ids with up to r recurrences. Without an exit criterion every row runs r
 * steps; with one, a row whose criterion (on its last position) falls below the threshold keeps
 * its state from then on. Returns the logits and the steps each row used.
 */
function runWithExit(
  model: RavenModel,
  ids: Int32Array,
  B: number,
  T: number,
  r: number,
  o: Omit<EvalOptions, "steps">,
  rng: Rng,
): { logits: Tensor; stepsUsed: number[] } {
  return noGrad(() => {
    const ctx: ForwardContext = {
      batch: B,
      seqLen: T,
      positions: Int32Array.from({ length: T }, (_, i) => i),
    };
    const e = embedInputs(model, ids, ctx);
    const mode = model.config.stateInit;
    const init: StateInitOption = mode === "zero" ? { mode } : { mode, rng };
    let s = initializeState(model, e, init);
    const criterion = o.exit ?? "none";
    if (criterion === "none") {
      for (let t = 0; t < r; t++) s = iterateOneStep(model, s, e, t, ctx);
      return {
        logits: predictFromLatents(model, s, ctx).logits,
        stepsUsed: Array<number>(B).fill(r),
      };
    }
    const threshold = o.exitThreshold ?? DEFAULT_EXIT_THRESHOLD[criterion];
    const exitState = new ExitTracker(criterion, threshold, B, T, model);
    const stepsUsed = Array<number>(B).fill(r);
    const exited = Array<boolean>(B).fill(false);
    const C = model.config.nEmbd;
    const rowSize = T * C;
    for (let t = 0; t < r; t++) {
      const next = iterateOneStep(model, s, e, t, ctx);
      // exited rows keep their frozen state
      for (let b = 0; b < B; b++) {
        if (exited[b]) next.data.set(s.data.subarray(b * rowSize, (b + 1) * rowSize), b * rowSize);
      }
      const prev = s;
      s = next;
      const needsLogits = exitState.needsLogits;
      const logits = needsLogits ? predictFromLatents(model, s, ctx).logits : null;
      for (let b = 0; b < B; b++) {
        if (exited[b]) continue;
        if (exitState.check(b, t, prev, s, logits)) {
          exited[b] = true;
          stepsUsed[b] = t + 1;
        }
      }
      if (exited.every(Boolean)) break;
    }
    return { logits: predictFromLatents(model, s, ctx).logits, stepsUsed };
  });
}

/** The per-row state of an exit criterion, evaluated on each row's last position. */
class ExitTracker {
  readonly needsLogits: boolean;
  private readonly criterion: ExitCriterion;
  private readonly threshold: number;
  private readonly T: number;
  private readonly model: RavenModel;
  private prevProbs: (Float64Array | null)[];
  private prevEntropy: number[];
  private prevArgmax: number[];
  private stable: number[];

  constructor(
    criterion: ExitCriterion,
    threshold: number,
    B: number,
    T: number,
    model: RavenModel,
  ) {
    this.criterion = criterion;
    this.threshold = threshold;
    this.T = T;
    this.model = model;
    this.needsLogits = !["latent-diff", "cosine"].includes(criterion);
    this.prevProbs = Array<Float64Array | null>(B).fill(null);
    this.prevEntropy = Array<number>(B).fill(100);
    this.prevArgmax = Array<number>(B).fill(-1);
    this.stable = Array<number>(B).fill(0);
  }

  /** Whether row b exits after 0-based step t. */
  check(b: number, t: number, prev: Tensor, s: Tensor, logits: Tensor | null): boolean {
    const C = this.model.config.nEmbd;
    const off = (b * this.T + this.T - 1) * C;
    switch (this.criterion) {
      case "latent-diff": {
        let d = 0;
        let n = 0;
        for (let i = 0; i < C; i++) {
          d += (s.data[off + i] - prev.data[off + i]) ** 2;
          n += s.data[off + i] ** 2;
        }
        return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12) < this.threshold;
      }
      case "cosine": {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let i = 0; i < C; i++) {
          dot += s.data[off + i] * prev.data[off + i];
          na += s.data[off + i] ** 2;
          nb += prev.data[off + i] ** 2;
        }
        return 1 - dot / Math.max(Math.sqrt(na * nb), 1e-12) < this.threshold;
      }
      case "kl":
      case "minp-kl":
      case "entropy-diff":
      case "argmax-stability":
        return this.checkLogits(b, t, logits as Tensor);
      case "none":
        return false;
      default:
        return this.criterion satisfies never;
    }
  }

  private checkLogits(b: number, t: number, logits: Tensor): boolean {
    const V = this.model.config.vocabSize;
    const Vp = logits.shape[2];
    const off = (b * this.T + this.T - 1) * Vp;
    const p = softmax(logits.data.subarray(off, off + V));
    let argmax = 0;
    for (let v = 1; v < V; v++) if (p[v] > p[argmax]) argmax = v;
    switch (this.criterion) {
      case "kl":
      case "minp-kl": {
        const q = this.criterion === "minp-kl" ? minp(p) : p;
        const before = this.prevProbs[b] ?? new Float64Array(V).fill(1 / V);
        this.prevProbs[b] = q;
        let kl = 0;
        for (let v = 0; v < V; v++) {
          if (before[v] > 0)
            kl += before[v] * (Math.log(before[v]) - Math.log(Math.max(q[v], 1e-30)));
        }
        return kl < this.threshold;
      }
      case "entropy-diff": {
        let h = 0;
        for (let v = 0; v < V; v++) if (p[v] > 0) h -= p[v] * Math.log(p[v]);
        const diff = Math.abs(h - this.prevEntropy[b]);
        this.prevEntropy[b] = h;
        return diff < this.threshold;
      }
      case "argmax-stability": {
        this.stable[b] = t > 0 && argmax === this.prevArgmax[b] ? this.stable[b] + 1 : 0;
        this.prevArgmax[b] = argmax;
        return this.stable[b] >= this.threshold;
      }
      case "none":
      case "latent-diff":
      case "cosine":
        return false;
      default:
        return this.criterion satisfies never;
    }
  }
}

function softmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  const p = new Float64Array(x.length);
  let z = 0;
  for (let i = 0; i < x.length; i++) z += p[i] = Math.exp(x[i] - m);
  for (let i = 0; i < x.length; i++) p[i] /= z;
  return p;
}

/** Probabilities below 0.1·max replaced by 1/V, renormalised (the reference's minp-kl). */
function minp(p: Float64Array): Float64Array {
  let m = 0;
  for (const v of p) m = Math.max(m, v);
  const q = p.map((v) => (v < 0.1 * m ? 1 / p.length : v));
  const z = q.reduce((a, b) => a + b, 0);
  return q.map((v) => v / z);
}

/** Rows per difficulty (ascending) then the all-examples row, for one r. */
export function summarize(
  examples: readonly Example[],
  results: readonly ExampleResult[],
  r: number,
): EvalRow[] {
  const groups = new Map<number | null, number[]>();
  examples.forEach((ex, i) => {
    if (ex.difficulty === undefined) return;
    const g = groups.get(ex.difficulty) ?? [];
    g.push(i);
    groups.set(ex.difficulty, g);
  });
  const row = (difficulty: number | null, idx: number[]): EvalRow => {
    const correct = idx.filter((i) => results[i].correct).length;
    const steps = idx.reduce((a, i) => a + results[i].stepsUsed, 0);
    const tokens = idx.reduce((a, i) => a + results[i].tokens, 0);
    return {
      steps: r,
      difficulty,
      accuracy: idx.length > 0 ? correct / idx.length : 0,
      count: idx.length,
      meanSteps: tokens > 0 ? steps / tokens : r,
    };
  };
  const keys = [...groups.keys()].sort((a, b) => (a ?? 0) - (b ?? 0));
  const rows = keys.map((d) => row(d, groups.get(d) ?? []));
  rows.push(
    row(
      null,
      examples.map((_, i) => i),
    ),
  );
  return rows;
}

/** A plain-text table: one row per r, one column per difficulty, then "all". */
export function formatTable(rows: readonly EvalRow[]): string {
  const steps = [...new Set(rows.map((r) => r.steps))];
  const diffs = [...new Set(rows.map((r) => r.difficulty))].sort((a, b) =>
    a === null ? 1 : b === null ? -1 : a - b,
  );
  const header = ["r", ...diffs.map((d) => (d === null ? "all" : `d=${d}`))];
  const hasExit = rows.some((r) => r.meanSteps !== r.steps);
  if (hasExit) header.push("mean r");
  const body = steps.map((s) => {
    const cells = diffs.map((d) => {
      const row = rows.find((x) => x.steps === s && x.difficulty === d);
      return row === undefined ? "-" : `${(100 * row.accuracy).toFixed(1)}%`;
    });
    const line = [String(s), ...cells];
    if (hasExit) {
      const all = rows.find((x) => x.steps === s && x.difficulty === null);
      line.push(all === undefined ? "-" : all.meanSteps.toFixed(1));
    }
    return line;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((l) => l[i].length)));
  const fmt = (l: string[]) => l.map((c, i) => c.padStart(widths[i])).join("  ");
  return [fmt(header), ...body.map(fmt)].join("\n");
}
