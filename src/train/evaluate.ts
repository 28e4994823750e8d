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
import { type ExitName, makeExitCriterion } from "../generate/exit.ts";
import { lastPositionLogits } from "../generate/generate.ts";
import { Rng } from "../tensor/random.ts";
import { type Tensor, noGrad } from "../tensor/tensor.ts";
import { fastBlockFor } from "../model/fast-block.ts";

export interface EvalOptions {
  /** Recurrence counts to evaluate (the cap when an exit criterion is set). */
  steps: readonly number[];
  exit?: ExitName;
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
      fastBlock: fastBlockFor(model), // the same values as the Tensor blocks, on reused buffers
    };
    const e = embedInputs(model, ids, ctx);
    const mode = model.config.stateInit;
    const init: StateInitOption = mode === "zero" ? { mode } : { mode, rng };
    let s = initializeState(model, e, init);
    const crit = makeExitCriterion(o.exit ?? "none", o.exitThreshold);
    if (crit.name === "none") {
      for (let t = 0; t < r; t++) s = iterateOneStep(model, s, e, t, ctx);
      return {
        logits: predictFromLatents(model, s, ctx).logits,
        stepsUsed: Array<number>(B).fill(r),
      };
    }
    crit.init(B);
    const stepsUsed = Array<number>(B).fill(r);
    const exited = Array<boolean>(B).fill(false);
    const rowSize = T * model.config.nEmbd;
    const V = model.config.paddedVocabSize;
    for (let t = 0; t < r; t++) {
      const prev = s;
      s = iterateOneStep(model, prev, e, t, ctx);
      // exited rows keep their frozen state
      exited.forEach((gone, b) => {
        if (gone) s.data.set(prev.data.subarray(b * rowSize, (b + 1) * rowSize), b * rowSize);
      });
      const out = crit.needsLogits ? predictFromLatents(model, s, ctx).logits : null;
      const logits = out ? lastPositionLogits(out, T, V) : null;
      const view = { batch: B, seqLen: T, width: model.config.nEmbd, vocab: V };
      const { exit } = crit.check({ ...view, state: s.data, prev: prev.data, logits });
      exit.forEach((go, b) => {
        if (go && !exited[b]) [exited[b], stepsUsed[b]] = [true, t + 1];
      });
      if (exited.every(Boolean)) break;
    }
    return { logits: predictFromLatents(model, s, ctx).logits, stepsUsed };
  });
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
