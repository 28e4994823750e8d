/**
 * The Backend: the few numeric kernels that carry loom's compute, over raw Float32Arrays.
 *
 * Everything else (autograd, model, training, generation) is written once, in TypeScript, on
 * top of this interface. Two implementations exist: `js` (pure TypeScript, the spec, runs
 * everywhere) and `native` (C kernels through an N-API addon: SIMD, cache blocking, threads).
 *
 * Conventions, as in llm.c: output arguments first; shapes in comments; row-major storage.
 * Kernels named `...Backward` ACCUMULATE into their gradient outputs (`+=`), so a tensor used
 * twice receives the sum of both contributions; all other outputs are overwritten.
 *
 * Shape letters: R = rows (flattened batch x positions), B = batch, Tq/Tk = query/key
 * positions, H = heads, D = head dim, V = vocab, N = hidden width of the gated MLP.
 */

export type BackendName = "js" | "native";

/** C = op(A) · op(B) (+ C when `accumulate`), op = transpose when the flag is set. */
export interface GemmShape {
  m: number; // rows of C
  n: number; // columns of C
  k: number; // the contracted dimension
  transA: boolean; // A stored (k, m) instead of (m, k)
  transB: boolean; // B stored (n, k) instead of (k, n)
  accumulate: boolean; // C += op(A)·op(B) instead of C = op(A)·op(B)
}

/**
 * Scaled dot-product attention over (B, T, H, D) tensors, scale 1/sqrt(D).
 * Query i may attend key j iff kPos[j] <= qPos[i] (and keyMask[b, j] != 0 when given, and
 * qPos[i] − kPos[j] < window when a window is given: sliding-window attention; with per-row
 * places, |qPlaces[b, i] − kPlaces[b, j]| < window instead, the window over Abacus places).
 * Default positions: qPos[i] = Tk - Tq + i, kPos[j] = j, i.e. the bottom-right-aligned causal
 * mask, which is plain causal when Tq == Tk and "no mask" for a single query after a cache.
 * Rows of q (and dq) may lie `qStride` floats apart and rows of k, v (dk, dv) `kvStride` apart,
 * so q, k, v can be views into one fused (B, T, 3C) projection; out, dout, probs are dense.
 */
export interface AttentionShape {
  batch: number; // B
  heads: number; // H
  headDim: number; // D
  tq: number; // query positions
  tk: number; // key positions
  qStride?: number; // floats between rows (b, i) of q and dq; default H·D
  kvStride?: number; // floats between rows (b, j) of k, v, dk, dv; default H·D
  qPos?: Int32Array; // (Tq) position of each query, shared by the batch
  kPos?: Int32Array; // (Tk) position of each key, shared by the batch
  keyMask?: Uint8Array; // (B, Tk) 0 = padding key, never attended
  window?: number; // > 0: query i sees only the keys at qPos[i] − window < kPos[j]; 0 = no limit
  qPlaces?: Int32Array; // (B, Tq) with kPlaces: the window counts these, both ways
  kPlaces?: Int32Array; // (B, Tk)
}

/** Rows of `addRows`; strides (floats between rows) default to width. */
export interface RowsShape {
  rows: number;
  width: number;
  dstStride?: number;
  aStride?: number;
  bStride?: number;
  accumulate: boolean;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number; // decoupled: p -= lr * weightDecay * p
  step: number; // 1-based, for bias correction
}

export interface Backend {
  readonly name: BackendName;
  /** Worker threads the backend computes with (1 for js). */
  readonly threads: number;

  /** C (m, n) = op(A) · op(B); see GemmShape. */
  gemm(c: Float32Array, a: Float32Array, b: Float32Array, s: GemmShape): void;

  /** out (B,Tq,H,D) = softmax(q·kᵀ/√D + mask) · v; probs (B,H,Tq,Tk) saved for backward. */
  attentionForward(
    out: Float32Array,
    probs: Float32Array,
    q: Float32Array, // (B, Tq, H, D)
    k: Float32Array, // (B, Tk, H, D)
    v: Float32Array, // (B, Tk, H, D)
    s: AttentionShape,
  ): void;
  /** dq, dk, dv += gradients of attentionForward given dout (B,Tq,H,D). */
  attentionBackward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dout: Float32Array,
    probs: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    s: AttentionShape,
  ): void;

  /** out (R, C) = x · rsqrt(mean(x²) + eps) · w, the reference's RMSNorm; rstd (R) saved. */
  rmsNormForward(
    out: Float32Array,
    rstd: Float32Array,
    x: Float32Array,
    w: Float32Array,
    rows: number,
    dim: number,
    eps: number,
  ): void;
  /** dx (R, C) += ..., dw (C) += ... for rmsNormForward. */
  rmsNormBackward(
    dx: Float32Array,
    dw: Float32Array,
    dout: Float32Array,
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    rows: number,
    dim: number,
  ): void;

  /**
   * Interleaved-pair rotary embedding on (B, T, H, D): pair (2i, 2i+1) of the token at position p
   * rotates by +θ (or -θ when `inverse`, which is the backward), with cos/sin read from tables
   * (maxPos, D/2). out may alias x.
   */
  rope(
    out: Float32Array,
    x: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    positions: Int32Array, // (T)
    batch: number,
    heads: number,
    headDim: number,
    inverse: boolean,
  ): void;

  /**
   * Strided row sums, the elementwise work of the tape (residuals, gradient accumulation, column
   * gathers and scatters, bias adds): for r < rows, j < width,
   *   t = a[r·aStride + j] (+ b[r·bStride + j]) (+ bias[j]),
   *   dst[r·dstStride + j] = accumulate ? dst[r·dstStride + j] + t : t.
   * dst may alias a or b element for element (same offsets).
   */
  addRows(
    dst: Float32Array,
    a: Float32Array,
    b: Float32Array | null,
    bias: Float32Array | null,
    s: RowsShape,
  ): void;

  /** out (R, N) = silu(g) · u where gu (R, 2N) = [g | u] per row. */
  swigluForward(out: Float32Array, gu: Float32Array, rows: number, hidden: number): void;
  /** dgu (R, 2N) += gradient of swigluForward given dout (R, N). */
  swigluBackward(
    dgu: Float32Array,
    dout: Float32Array,
    gu: Float32Array,
    rows: number,
    hidden: number,
  ): void;

  /**
   * Softmax cross-entropy per row, labels < 0 ignored (loss 0, gradient 0).
   * losses (R) = -log softmax(logits)[label]; dlogits (R, V) = softmax - onehot (unscaled).
   */
  crossEntropy(
    losses: Float32Array,
    dlogits: Float32Array,
    logits: Float32Array,
    labels: Int32Array,
    rows: number,
    vocab: number,
  ): void;

  /** One AdamW step in place: m, v moments; decoupled weight decay. */
  adamw(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    h: AdamWHyper,
  ): void;
}
