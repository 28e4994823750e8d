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
): Tensor {
  if (recording && parents.some((p) => p.requiresGrad)) {
    return new Tensor(data, shape, true, parents, backwardFn);
  }
  return new Tensor(data, shape);
}

/**
 * Gradient buffers of intermediate tensors whose closure has run, by length, reused for the
 * next gradients of the sweep: a fresh large Float32Array is a run of page faults (~6 µs each
 * on the development machine), about as long as the GEMM that fills it. Filled only during
 * `backward`, emptied when it ends, so it never holds memory between steps.
 */
const spare = new Map<number, Float32Array[]>();
let sweeping = false;

function takeSpare(n: number): Float32Array | undefined {
  return sweeping ? spare.get(n)?.pop() : undefined;
}

/** t.grad, allocated as zeros on first use. */
export function gradOf(t: Tensor): Float32Array {
  t.grad ??= takeSpare(t.size)?.fill(0) ?? new Float32Array(t.size);
  return t.grad;
}

/**
 * t.grad for an op that can write its contribution instead of adding it: `fresh` = true means
 * the buffer was just created and its contents are arbitrary, so the caller MUST overwrite every
 * entry (the first contribution then costs no zero-fill and no extra pass).
 */
export function gradSlot(t: Tensor): { g: Float32Array; fresh: boolean } {
  if (t.grad !== null) return { g: t.grad, fresh: false };
  t.grad = takeSpare(t.size) ?? new Float32Array(t.size);
  return { g: t.grad, fresh: true };
}

export interface BackwardOptions {
  /**
   * Recycle the graph's activations into the next forward (see `alloc`): afterwards, the data
   * of every non-leaf tensor of this graph belongs to the allocator, so the caller must not read
   * any of them again (read the loss value before). For training loops: the tape then reuses
   * one step's buffers instead of zero-filling fresh ones and leaving the old to the GC.
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
    spare.clear();
  }
  if (o.release === true) recycleActivations(order);
}

/**
 * Activation buffers of the last released graph, by length, for `alloc`. Holds at most one
 * graph's activations (memory its step needed anyway); replaced at each release.
 */
let recycled = new Map<number, Float32Array[]>();
let poisonRecycled = false;

/**
 * A buffer of n floats for an op's result. Its contents are arbitrary (a recycled activation,
 * or zeros): the caller must write every element.
 */
export function alloc(n: number): Float32Array {
  return recycled.get(n)?.pop() ?? new Float32Array(n);
}

/** Tests: fill recycled buffers with NaN, so a caller of `alloc` that skips an element shows. */
export function setPoisonRecycled(on: boolean): void {
  poisonRecycled = on;
}

function recycleActivations(order: readonly Tensor[]): void {
  recycled = new Map();
  const seen = new Set<ArrayBufferLike>();
  for (const t of order) {
    const d = t.data;
    if (t.backwardFn === null || d.length < 1024 || seen.has(d.buffer)) continue;
    seen.add(d.buffer); // views (reshape) share a buffer: recycle it once, and only whole
    if (d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength) continue;
    if (poisonRecycled) d.fill(Number.NaN);
    const list = recycled.get(d.length);
    if (list) list.push(d);
    else recycled.set(d.length, [d]);
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
