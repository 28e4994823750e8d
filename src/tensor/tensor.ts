/**
 * Tensor and tape autograd, micrograd-style: every op's result remembers its parents and a
 * closure that pushes its gradient back to them. `backward(loss)` runs the closures in reverse
 * topological order. `noGrad(fn)` runs fn without recording anything and `detach(t)` cuts a
 * tensor off the tape: the two primitives of truncated backprop through the recurrence.
 */

export type Shape = readonly number[];

export class Tensor {
  readonly data: Float32Array;
  readonly shape: Shape;
  /** Whether gradients flow to this tensor (parameters, and results computed from them). */
  readonly requiresGrad: boolean;
  readonly parents: readonly Tensor[];
  /** Pushes this.grad into the parents' grads; null for leaves. */
  readonly backwardFn: (() => void) | null;
  /** Accumulated dL/dthis, allocated on first use (same layout as data). */
  grad: Float32Array | null = null;
  /** Scratch the backward closure reads besides the data (attention's probabilities, ...). */
  saved: readonly Float32Array[] = [];

  constructor(
    data: Float32Array,
    shape: Shape,
    requiresGrad = false,
    parents: readonly Tensor[] = [],
    backwardFn: (() => void) | null = null,
  ) {
    if (data.length !== numel(shape)) {
      throw new Error(
        `Tensor: shape [${shape.join(", ")}] needs ${numel(shape)} values, got ${data.length}`,
      );
    }
    this.data = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
    this.parents = parents;
    this.backwardFn = backwardFn;
  }

  get size(): number {
    return this.data.length;
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A constant tensor (no gradient). */
export function tensor(data: Float32Array | number[], shape: Shape): Tensor {
  return new Tensor(data instanceof Float32Array ? data : Float32Array.from(data), shape);
}

export function zeros(shape: Shape): Tensor {
  return new Tensor(new Float32Array(numel(shape)), shape);
}

/** A trainable leaf. */
export function parameter(data: Float32Array, shape: Shape): Tensor {
  return new Tensor(data, shape, true);
}

let recording = true;

/** Whether ops currently record the tape. */
export function gradEnabled(): boolean {
  return recording;
}

/** Run fn with the tape off: results are constants, nothing is kept for backward. */
export function noGrad<T>(fn: () => T): T {
  const before = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = before;
  }
}

/** The same values, cut off the tape (shares the data buffer; do not mutate it). */
export function detach(t: Tensor): Tensor {
  return new Tensor(t.data, t.shape);
}

/**
 * The result of an op. It joins the tape only if recording is on and some parent needs a
 * gradient; otherwise the closure is dropped at once (so noGrad keeps no activations alive).
 */
export function result(
  data: Float32Array,
  shape: Shape,
  parents: readonly Tensor[],
  backwardFn: () => void,
  saved: readonly Float32Array[] = [],
): Tensor {
  if (recording && parents.some((p) => p.requiresGrad)) {
    const t = new Tensor(data, shape, true, parents, backwardFn);
    t.saved = saved;
    return t;
  }
  return new Tensor(data, shape);
}

/**
 * Gradient buffers of intermediate tensors whose closure has run, by length, reused for the
 * next gradients of the sweep: a fresh large Float32Array is a run of page faults (~6 µs each
 * on the development machine), about as long as the GEMM that fills it. Filled only during
 * `backward`; when it ends they go to the pool of `alloc`.
 */
const spare = new Map<number, Float32Array[]>();
let sweeping = false;

function takeSpare(n: number): Float32Array | undefined {
  return sweeping ? spare.get(n)?.pop() : undefined;
}

/** t.grad, allocated as zeros on first use. */
export function gradOf(t: Tensor): Float32Array {
  t.grad ??= (takeSpare(t.size) ?? alloc(t.size)).fill(0);
  return t.grad;
}

/**
 * t.grad for an op that can write its contribution instead of adding it: `fresh` = true means
 * the buffer was just created and its contents are arbitrary, so the caller MUST overwrite every
 * entry (the first contribution then costs no zero-fill and no extra pass).
 */
export function gradSlot(t: Tensor): { g: Float32Array; fresh: boolean } {
  if (t.grad !== null) return { g: t.grad, fresh: false };
  t.grad = takeSpare(t.size) ?? alloc(t.size);
  return { g: t.grad, fresh: true };
}

export interface BackwardOptions {
  /**
   * Recycle the graph's activations into the next forward (see `alloc`): afterwards, the data
   * of every non-leaf tensor of this graph belongs to the allocator, so the caller must not read
   * any of them again (read the loss value before). For training loops: the next steps' ops then
   * reuse these buffers instead of zero-filling fresh ones and leaving the old to the GC (1.4x
   * faster training at width 64: bench/recipe-notes.md, "Engine").
   */
  release?: boolean;
}

/**
 * Reverse-mode sweep from a scalar: dloss/dloss = 1, then each closure in reverse order.
 * Like PyTorch, only leaves (parameters, inputs) keep their `grad`: an intermediate tensor's
 * gradient is released (and its buffer reused) as soon as its closure has consumed it.
 */
export function backward(loss: Tensor, o: BackwardOptions = {}): void {
  if (loss.size !== 1)
    throw new Error(`backward: loss must be a scalar, got [${loss.shape.join(", ")}]`);
  const order = topoOrder(loss);
  gradOf(loss)[0] = 1;
  sweeping = true;
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      if (t.backwardFn === null) continue;
      t.backwardFn();
      releaseGrad(t);
    }
  } finally {
    sweeping = false;
  }
  releases += 1;
  let bytes = 0;
  for (const list of spare.values()) for (const g of list) bytes += recycle(g.buffer);
  spare.clear();
  if (o.release === true) bytes += recycleActivations(order);
  peakBytes = Math.max(peakBytes, bytes);
  trimRecycled(RECYCLE_GRAPHS * peakBytes);
}

/**
 * Activation buffers of released graphs, by capacity, for `alloc`. Consecutive training
 * batches differ in length, so `alloc` hands out exact-length views of buffers rounded up to a
 * size class (at most 1/8 larger), and serves a request from any class up to twice its length.
 * The pool is kept across steps and capped at RECYCLE_GRAPHS times the most bytes one backward
 * has given back (the largest step's activations and gradients); when over, the classes used
 * least recently go to the GC. Only buffers `alloc` created are pooled.
 */
const recycled = new Map<number, { bufs: ArrayBuffer[]; lastUse: number }>();
const pooled = new WeakSet<ArrayBufferLike>();
let recycledBytes = 0;
let releases = 0;
let peakBytes = 0; // the most bytes one backward has given back
let poisonRecycled = false;
const RECYCLE_GRAPHS = 2;
const MIN_POOLED = 1024; // floats: smaller buffers are cheap to allocate

/** n rounded up to m·2^e with 8 ≤ m < 16: at most 12.5% above n. */
export function sizeClass(n: number): number {
  return Math.ceil(n / classStep(n)) * classStep(n);
}

function classStep(n: number): number {
  return 2 ** Math.max(0, Math.floor(Math.log2(n)) - 3);
}

/**
 * A buffer of n floats for an op's result. Its contents are arbitrary (a recycled activation,
 * or zeros): the caller must write every element.
 */
export function alloc(n: number): Float32Array {
  if (n < MIN_POOLED) return new Float32Array(n);
  return new Float32Array(takeRecycled(n) ?? newPooled(sizeClass(n)), 0, n);
}

/** The smallest recycled buffer of n to 2n floats, if any. */
function takeRecycled(n: number): ArrayBuffer | undefined {
  for (let cap = sizeClass(n); cap <= 2 * n; cap += classStep(cap)) {
    const entry = recycled.get(cap);
    const buf = entry?.bufs.pop();
    if (entry === undefined || buf === undefined) continue;
    entry.lastUse = releases;
    recycledBytes -= buf.byteLength;
    return buf;
  }
  return undefined;
}

function newPooled(cap: number): ArrayBuffer {
  const buf = new ArrayBuffer(4 * cap);
  pooled.add(buf);
  return buf;
}

/** Tests: fill recycled buffers with NaN, so a caller of `alloc` that skips an element shows. */
export function setPoisonRecycled(on: boolean): void {
  poisonRecycled = on;
}

/** Adds the graph's activation (and saved scratch) buffers to the pool; returns their bytes. */
function recycleActivations(order: readonly Tensor[]): number {
  const seen = new Set<ArrayBufferLike>();
  let bytes = 0;
  for (const t of order) {
    if (t.backwardFn === null) continue;
    for (const buf of [t.data.buffer, ...t.saved.map((d) => d.buffer)]) {
      if (seen.has(buf)) continue; // views (reshape) share a buffer: recycle it once
      seen.add(buf);
      bytes += recycle(buf);
    }
  }
  return bytes;
}

/** Returns a buffer `alloc` made to the pool (others are left to the GC); its bytes, or 0. */
function recycle(buf: ArrayBufferLike): number {
  if (!pooled.has(buf)) return 0;
  if (poisonRecycled) new Float32Array(buf).fill(Number.NaN);
  const cap = buf.byteLength / 4;
  let entry = recycled.get(cap);
  if (entry === undefined) {
    entry = { bufs: [], lastUse: releases };
    recycled.set(cap, entry);
  }
  entry.bufs.push(buf as ArrayBuffer);
  entry.lastUse = releases;
  recycledBytes += buf.byteLength;
  return buf.byteLength;
}

/** Drops whole classes, least recently used first, until the pool holds at most `cap` bytes. */
function trimRecycled(cap: number): void {
  if (recycledBytes <= cap) return;
  const byAge = [...recycled].sort((a, b) => a[1].lastUse - b[1].lastUse);
  for (const [n, entry] of byAge) {
    if (recycledBytes <= cap) break;
    for (const b of entry.bufs) recycledBytes -= b.byteLength;
    recycled.delete(n);
  }
}

function releaseGrad(t: Tensor): void {
  const g = t.grad;
  t.grad = null;
  if (g === null || g.length < 1024) return; // small buffers: the allocator is fast enough
  const list = spare.get(g.length);
  if (list) list.push(g);
  else spare.set(g.length, [g]);
}

/** Tensors on the tape below root, parents before children (iterative DFS: deep graphs are fine). */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop() as [Tensor, boolean];
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t) || !t.requiresGrad) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const p of t.parents) if (!seen.has(p)) stack.push([p, false]);
  }
  return order;
}
