/**
 * Test-time-scaling evaluation: greedy decoding of each example's answer at a fixed number of
 * recurrences r (or with a per-token exit criterion capped at r), scored by exact match, reported
 * per (r, difficulty) and for all examples together.
 *
 * The work is a list of independent jobs, one per (r, batch of examples whose prompts have the
 * same length), which one thread runs in order (`evaluate`) or worker threads share
 * (src/node/parallel-eval.ts) with the same result: each example draws its random initial states
 * from a generator of its own. Decoding runs the whole prefix through the model for every new
 * token (answers are short). A row stops as soon as it emits <eos>, or as soon as its output can
 * no longer match the answer (exact match is already lost, so the rest of its decoding cannot
 * change the score), unless its prediction is asked for whole (`whole`).
 */
import { type Example, encodePrompt } from "../data/example.ts";
import { type CharTokenizer, EOS_ID } from "../data/tokenizer.ts";
import { sequencePlaces } from "../model/abacus.ts";
import type { ForwardContext } from "../model/layers.ts";
import {
  type RavenModel,
  embedInputs,
  fillRandomState,
  initializeState,
  iterateOneStep,
  predictFromLatents,
} from "../model/model.ts";
import { type ExitName, makeExitCriterion } from "../generate/exit.ts";
import { lastPositionLogits } from "../generate/generate.ts";
import { Rng, mixSeed } from "../tensor/random.ts";
import { type Tensor, noGrad, tensor } from "../tensor/tensor.ts";
import { fastBlockFor } from "../model/fast-block.ts";

export interface EvalOptions extends DecodeOptions {
  /** Recurrence counts to evaluate (the cap when an exit criterion is set). */
  steps: readonly number[];
  /** Rows per forward (default 64). */
  batchSize?: number;
  /** Called after each decoded batch. */
  onProgress?: (job: DecodeJob) => void;
  /** Called with each example's answer at each r, in the order of `steps`, then of examples. */
  onPrediction?: ((p: Prediction) => void) | undefined;
}

/** How a batch is decoded: the exit criterion and the seed of the random initial states. */
export interface DecodeOptions {
  exit?: ExitName | undefined;
  exitThreshold?: number | undefined;
  /** Seed of the random initial states (when the config's state_init is random). */
  seed?: number | undefined;
  /**
   * Decode each row to its <eos> (or one token past its answer) after exact match is lost too,
   * so that a prediction shows whole; by default a row stops at its first wrong token, all the
   * score needs. The scores and meanSteps are the same either way.
   */
  whole?: boolean | undefined;
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

/** One example's answer at r recurrences (its index into the evaluated examples). */
export interface Prediction {
  steps: number;
  index: number;
  prediction: string;
  correct: boolean;
  /** The recurrences of each decoded token, the <eos> too. */
  tokenSteps: number[];
}

/**
 * A batch to decode at r recurrences: examples `rows` (indices into the evaluated list), whose
 * prompts all have the same length. Jobs are independent: any thread may decode any of them.
 */
export interface DecodeJob {
  r: number;
  rows: number[];
  prompts: number[][];
  answers: number[][];
}

/**
 * A decoded row: its answer ids (without <eos>), exact match, and the recurrences of each decoded
 * token; the score counts the first `scored` of them (up to the first wrong one).
 */
export interface DecodedRow {
  correct: boolean;
  ids: number[];
  tokenSteps: number[];
  scored: number;
}

/** `evaluate`, or the same rows computed elsewhere (on worker threads: src/node/parallel-eval.ts). */
export type Evaluator = (
  model: RavenModel,
  tok: CharTokenizer,
  examples: readonly Example[],
  o: EvalOptions,
) => EvalRow[] | Promise<EvalRow[]>;

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
  const jobs = planDecodeJobs(tok, examples, o.steps, o.batchSize ?? 64);
  const decoded = jobs.map((job) => {
    const rows = decodeJob(model, job, o);
    o.onProgress?.(job);
    return rows;
  });
  return collectResults(tok, examples, o, jobs, decoded);
}

/**
 * The batches of an evaluation: for each r, the examples grouped by prompt length (shortest
 * first), `batchSize` rows at most per batch.
 */
export function planDecodeJobs(
  tok: CharTokenizer,
  examples: readonly Example[],
  steps: readonly number[],
  batchSize: number,
): DecodeJob[] {
  const prompts = examples.map((ex) => encodePrompt(tok, ex.prompt));
  const answers = examples.map((ex) => tok.encode(ex.answer));
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => {
    const g = groups.get(p.length) ?? [];
    g.push(i);
    groups.set(p.length, g);
  });
  const batches = [...groups]
    .sort((a, b) => a[0] - b[0])
    .flatMap(([, members]) => chunks(members, batchSize));
  return steps.flatMap((r) => {
    if (!Number.isInteger(r) || r < 1) {
      throw new RangeError(`evaluate: steps must be >= 1, got ${r}`);
    }
    return batches.map((rows) => ({
      r,
      rows,
      prompts: rows.map((i) => prompts[i]),
      answers: rows.map((i) => answers[i]),
    }));
  });
}

/** The rows of every r of `o.steps`, from the decoded jobs (in `jobs` order). */
export function collectResults(
  tok: CharTokenizer,
  examples: readonly Example[],
  o: Pick<EvalOptions, "steps" | "onPrediction">,
  jobs: readonly DecodeJob[],
  decoded: readonly DecodedRow[][],
): EvalRow[] {
  return o.steps.flatMap((r) => {
    const results = new Array<ExampleResult>(examples.length);
    const predictions = new Array<Prediction>(examples.length);
    jobs.forEach((job, j) => {
      if (job.r !== r) return;
      job.rows.forEach((index, k) => {
        const { correct, ids, tokenSteps, scored } = decoded[j][k];
        const prediction = tok.decode(ids);
        const stepsUsed = tokenSteps.slice(0, scored).reduce((a, b) => a + b, 0);
        results[index] = { correct, prediction, stepsUsed, tokens: scored };
        predictions[index] = { steps: r, index, prediction, correct, tokenSteps };
      });
    });
    if (o.onPrediction !== undefined) predictions.forEach(o.onPrediction);
    return summarize(examples, results, r);
  });
}

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/**
 * Greedy decoding of one job. Each row draws its initial states from a generator of its own,
 * seeded by (seed, r, example index), so its answer depends neither on the batch it is in nor
 * on the thread that decodes it.
 */
export function decodeJob(model: RavenModel, job: DecodeJob, o: DecodeOptions): DecodedRow[] {
  const { r, prompts, answers } = job;
  const B = prompts.length;
  const V = model.config.vocabSize;
  const rngs = job.rows.map((i) => new Rng(mixSeed(mixSeed(o.seed ?? 0, EVAL_SALT, r), 0, i)));
  const rows: DecodedRow[] = prompts.map(() => ({
    correct: false,
    ids: [],
    tokenSteps: [],
    scored: 0,
  }));
  const active = prompts.map(() => true);
  const matching = prompts.map(() => true);
  const seqs = prompts.map((p) => [...p]);
  const maxNew = Math.max(...answers.map((a) => a.length)) + 1;
  for (let t = 0; t < maxNew && active.some(Boolean); t++) {
    const T = seqs[0].length;
    if (T > model.config.blockSize) break;
    const ids = Int32Array.from(seqs.flat());
    const { logits, stepsUsed } = runWithExit(model, ids, B, T, r, o, rngs);
    const Vp = logits.shape[2];
    for (let b = 0; b < B; b++) {
      if (!active[b]) continue;
      const off = (b * T + T - 1) * Vp;
      let best = 0;
      for (let v = 1; v < V; v++) if (logits.data[off + v] > logits.data[off + best]) best = v;
      const row = rows[b];
      row.tokenSteps.push(stepsUsed[b]);
      if (matching[b]) row.scored += 1;
      const ans = answers[b];
      if (best === EOS_ID) {
        row.correct = matching[b] && row.ids.length === ans.length;
        active[b] = false;
        continue;
      }
      row.ids.push(best);
      const pos = row.ids.length - 1;
      if (pos >= ans.length || ans[pos] !== best) {
        matching[b] = false; // exact match lost: the rest of the row cannot change its score
        if (o.whole !== true || pos >= ans.length) active[b] = false;
      }
    }
    // finished rows keep decoding along (their tokens are ignored) so the batch stays rectangular
    for (let b = 0; b < B; b++) seqs[b].push(rows[b].ids[rows[b].ids.length - 1] ?? EOS_ID);
  }
  return rows;
}

const EVAL_SALT = 0x9b05688c;

/** The initial state of a (B, T) forward: zeros, or row b drawn from `rngs[b]`. */
function initialState(model: RavenModel, e: Tensor, rngs: readonly Rng[]): Tensor {
  const mode = model.config.stateInit;
  if (mode === "zero") return initializeState(model, e, { mode });
  const data = new Float32Array(e.size);
  const rowSize = e.size / rngs.length;
  rngs.forEach((rng, b) => {
    fillRandomState(model.config, { mode, rng }, data.subarray(b * rowSize, (b + 1) * rowSize));
  });
  return tensor(data, e.shape);
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
  o: DecodeOptions,
  rngs: readonly Rng[],
): { logits: Tensor; stepsUsed: number[] } {
  return noGrad(() => {
    const ctx: ForwardContext = {
      batch: B,
      seqLen: T,
      positions: Int32Array.from({ length: T }, (_, i) => i),
      places: sequencePlaces(model.config, ids, B, T),
      fastBlock: fastBlockFor(model), // the same values as the Tensor blocks, on reused buffers
    };
    const e = embedInputs(model, ids, ctx);
    let s = initialState(model, e, rngs);
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
