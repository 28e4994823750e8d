/**
 * Training batches as flat (B, T) Int32Arrays: padded prompt/answer examples with pre-shifted
 * labels, a seeded epoch shuffler, and random windows of a token stream for plain-text LM data.
 */
import type { Rng } from "../tensor/random.ts";
import { IGNORE_INDEX, nextTokenLabels, type EncodedExample } from "./example.ts";
import { shuffleInPlace } from "./shuffle.ts";

/** Row-major (batch, seqLen) inputs and next-token labels (IGNORE_INDEX = no loss). */
export interface Batch {
  inputIds: Int32Array;
  labels: Int32Array;
  batch: number;
  seqLen: number;
}

/**
 * The examples at `indices` as one batch, right-padded to the longest with `padId` (inputs) and
 * IGNORE_INDEX (labels).
 */
export function makeBatch(
  encoded: readonly EncodedExample[],
  indices: readonly number[],
  padId: number,
): Batch {
  if (indices.length === 0) throw new RangeError("makeBatch: no indices");
  const rows = indices.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= encoded.length) {
      throw new RangeError(`makeBatch: index ${i} outside [0, ${encoded.length})`);
    }
    return nextTokenLabels(encoded[i]);
  });
  const seqLen = Math.max(...rows.map((r) => r.inputs.length));
  const inputIds = new Int32Array(rows.length * seqLen).fill(padId);
  const labels = new Int32Array(rows.length * seqLen).fill(IGNORE_INDEX);
  rows.forEach((row, b) => {
    inputIds.set(row.inputs, b * seqLen);
    labels.set(row.labels, b * seqLen);
  });
  return { inputIds, labels, batch: rows.length, seqLen };
}

/**
 * One epoch over `n` examples in an order shuffled by `rng`: index arrays of `batchSize`, the
 * last one shorter when `batchSize` does not divide `n`. Call again for the next epoch.
 */
export function* batchIterator(n: number, batchSize: number, rng: Rng): Generator<number[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchIterator: batchSize must be a positive integer, got ${batchSize}`);
  }
  const order = shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    rng,
  );
  for (let start = 0; start < n; start += batchSize) yield order.slice(start, start + batchSize);
}

/**
 * `batch` random windows of `seqLen + 1` tokens from a token stream (nanoGPT's get_batch):
 * inputs are the first `seqLen`, labels the last `seqLen`, every position trained.
 */
export function packText(
  tokens: ArrayLike<number>,
  seqLen: number,
  batch: number,
  rng: Rng,
): Batch {
  const starts = tokens.length - seqLen; // a window starting at s reads tokens[s .. s + seqLen]
  if (starts < 1) {
    throw new RangeError(
      `packText: ${tokens.length} tokens, need at least seqLen + 1 = ${seqLen + 1}`,
    );
  }
  const inputIds = new Int32Array(batch * seqLen);
  const labels = new Int32Array(batch * seqLen);
  for (let b = 0; b < batch; b++) {
    const s = rng.int(starts);
    for (let t = 0; t < seqLen; t++) {
      inputIds[b * seqLen + t] = tokens[s + t];
      labels[b * seqLen + t] = tokens[s + t + 1];
    }
  }
  return { inputIds, labels, batch, seqLen };
}
