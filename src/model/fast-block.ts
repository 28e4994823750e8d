/**
 * The sandwich block for inference (the tape off), on reused buffers: the same backend kernels, in the
 * same order, on the same values as `sandwichBlock` (src/model/layers.ts, the spec), but with
 * no Tensor, no tape and no fresh scratch arrays. Decoding runs ~20 small ops per block and 18
 * blocks per token at r = 8; with the Tensor path each op allocates its (zeroed) output and an
 * object, and that churn plus the cache pollution it causes cost about as much as the matvecs.
 *
 * Results are bitwise those of the spec on either backend (test/fast-block.test.ts): every
 * kernel call receives the same inputs (bias and residual adds included: the same `addRows`
 * calls as the ops). Only the block's output is a fresh array, since callers keep it.
 *
 * Shape letters: R = B·T rows, C width, H heads, D = C / H, N MLP hidden width, Tk keys.
 */
import type { Backend } from "../backend/backend.ts";
import { backend } from "../backend/select.ts";
import type { BlockEnv, BlockFn, CachedKV, ForwardContext } from "./layers.ts";
import type { BlockParams } from "./params.ts";
import { queryScales, scaleQueries } from "./attention-scale.ts";
import { rotaryPositions, windowPlaces } from "./rope.ts";
import { type Tensor, alloc, tensor } from "../tensor/tensor.ts";

/** Grow-only scratch buffers by name, handed out as exact-length views. */
export class Workspace {
  private readonly bufs = new Map<string, Float32Array>();
  private readonly views = new Map<string, Float32Array>();

  /** A buffer of n floats with arbitrary contents, reused by the next call with this name. */
  get(name: string, n: number): Float32Array {
    const view = this.views.get(name);
    if (view?.length === n) return view;
    let buf = this.bufs.get(name);
    if (buf === undefined || buf.length < n) {
      buf = new Float32Array(Math.max(n, 2 * (buf?.length ?? 0)));
      this.bufs.set(name, buf);
    }
    const v = buf.subarray(0, n);
    this.views.set(name, v);
    return v;
  }
}

/** One workspace per model: block calls are synchronous and only their outputs escape. */
const workspaces = new WeakMap<object, Workspace>();

export function workspaceFor(model: object): Workspace {
  let ws = workspaces.get(model);
  if (ws === undefined) {
    ws = new Workspace();
    workspaces.set(model, ws);
  }
  return ws;
}

/** The model's inference block on its own workspace. */
export function fastBlockFor(model: object): BlockFn {
  const ws = workspaceFor(model);
  return (p, x, slot, env, ctx) => fastSandwichBlock(ws, p, x, slot, env, ctx);
}

/**
 * sandwichBlock under noGrad (with or without a KV cache):
 *   h = norm_2(x + proj(attn(rope(q + bq), rope(k + bk), v))),  [q|k|v] = norm_1(x)·Wqkvᵀ
 *   out = norm_4(h + mlpProj(swiglu(norm_3(h)·Wfcᵀ)))
 */
export function fastSandwichBlock(
  ws: Workspace,
  p: BlockParams,
  x: Tensor,
  slot: number,
  env: BlockEnv,
  ctx: ForwardContext,
): Tensor {
  const be = backend();
  const { nEmbd: C, nHeads: H, normEps: eps } = env.config;
  const [B, T] = [ctx.batch, ctx.seqLen];
  const R = B * T;
  const rstd = ws.get("rstd", R);
  // attention branch
  const n1 = ws.get("n1", R * C);
  be.rmsNormForward(n1, rstd, x.data, p.norm1.data, R, C, eps);
  const qkv = ws.get("qkv", R * 3 * C);
  matmulT(be, qkv, n1, p.wqkv, R);
  const q = ws.get("q", R * C);
  const k = ws.get("k", R * C);
  const v = ws.get("v", R * C);
  const bias = p.qkBias?.data ?? null;
  splitHeads(be, q, qkv, R, C, 0, bias);
  splitHeads(be, k, qkv, R, C, 1, bias);
  splitHeads(be, v, qkv, R, C, 2, null);
  const turns = rotaryPositions(env.config, ctx);
  rotate(be, q, turns, env, B, T, H);
  rotate(be, k, turns, env, B, T, H);
  const scales = queryScales(env.config, ctx.ropePositions ?? ctx.positions, B, T);
  if (scales !== null) scaleQueries(q, scales, C);
  const places = windowPlaces(env.config, ctx);
  const kv = keysAndValues(ctx, slot, k, v, places);
  const y = ws.get("y", R * C);
  const probs = ws.get("probs", B * H * T * kv.tk);
  be.attentionForward(y, probs, q, kv.k, kv.v, {
    ...{ batch: B, heads: H, headDim: C / H, tq: T, tk: kv.tk },
    ...{ qPos: ctx.positions, kPos: kv.kPos, window: env.config.attentionWindow },
    ...(kv.keyMask ? { keyMask: kv.keyMask } : {}),
    ...(places && kv.kPlaces ? { qPlaces: places, kPlaces: kv.kPlaces } : {}),
  });
  const attn = ws.get("attn", R * C);
  matmulT(be, attn, y, p.proj, R);
  const sum = ws.get("sum", R * C);
  addInto(be, sum, x.data, attn);
  const h = ws.get("h", R * C);
  be.rmsNormForward(h, rstd, sum, p.norm2.data, R, C, eps);
  // MLP branch
  const n3 = ws.get("n3", R * C);
  be.rmsNormForward(n3, rstd, h, p.norm3.data, R, C, eps);
  const N = p.mlpProj.shape[1];
  const gu = ws.get("gu", R * 2 * N);
  matmulT(be, gu, n3, p.fc, R);
  const act = ws.get("act", R * N);
  be.swigluForward(act, gu, R, N);
  const mlp = ws.get("mlp", R * C);
  matmulT(be, mlp, act, p.mlpProj, R);
  addInto(be, sum, h, mlp);
  const out = alloc(R * C); // escapes: the next block's input, or the state
  be.rmsNormForward(out, rstd, sum, p.norm4.data, R, C, eps);
  return tensor(out, x.shape);
}

/**
 * What the chunk attends to: the cache's keys and values for the slot, or its own; with the
 * keys' places when the window counts them (`places`, the chunk's).
 */
function keysAndValues(
  ctx: ForwardContext,
  slot: number,
  k: Float32Array,
  v: Float32Array,
  places: Int32Array | undefined,
): CachedKV {
  if (ctx.cache) return ctx.cache.update(slot, k, v, ctx.positions, places);
  const own = { k, v, tk: ctx.seqLen, kPos: ctx.positions, ...(places ? { kPlaces: places } : {}) };
  return ctx.keyMask ? { ...own, keyMask: ctx.keyMask } : own;
}

/** y (R, out) = x (R, in) · wᵀ, as ops.linear. */
function matmulT(be: Backend, y: Float32Array, x: Float32Array, w: Tensor, R: number): void {
  const [n, k] = w.shape;
  be.gemm(y, x, w.data, { m: R, n, k, transA: false, transB: true, accumulate: false });
}

/** dst = a + b elementwise, as ops.add. */
function addInto(be: Backend, dst: Float32Array, a: Float32Array, b: Float32Array): void {
  be.addRows(dst, a, b, null, { rows: 1, width: dst.length, accumulate: false });
}

/** dst (R, C) = part `part` of qkv (R, 3C) (+ bias[part·C …]), as ops.headsOf before RoPE. */
function splitHeads(
  be: Backend,
  dst: Float32Array,
  qkv: Float32Array,
  R: number,
  C: number,
  part: number,
  bias: Float32Array | null,
): void {
  const b = bias === null ? null : bias.subarray(part * C, (part + 1) * C);
  be.addRows(dst, qkv.subarray(part * C), null, b, {
    rows: R,
    width: C,
    aStride: 3 * C,
    accumulate: false,
  });
}

/** RoPE in place on (B, T, H, D), positions (T) or (B, T), as ops.headsOf. */
function rotate(
  be: Backend,
  x: Float32Array,
  positions: Int32Array,
  env: BlockEnv,
  B: number,
  T: number,
  H: number,
): void {
  const { cos, sin } = env.rope;
  const D = env.config.nEmbd / H;
  if (positions.length === T) {
    be.rope(x, x, cos, sin, positions, B, H, D, false);
    return;
  }
  const n = T * H * D;
  for (let b = 0; b < B; b++) {
    const row = x.subarray(b * n, (b + 1) * n);
    be.rope(row, row, cos, sin, positions.subarray(b * T, (b + 1) * T), 1, H, D, false);
  }
}
