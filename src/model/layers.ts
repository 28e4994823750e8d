/**
 * The sandwich block, Huginn's only block type, and its two branches. Pure functions of
 * (parameters, input, context).
 *
 *   h   = norm_2(x + attn(norm_1(x)))
 *   out = norm_4(h + mlp(norm_3(h)))
 *
 * Shape letters: B batch, T positions, C width, H heads, D = C / H, N MLP hidden width.
 */
import {
  add,
  attention,
  headsOf,
  linear,
  narrow,
  reshape,
  rmsNorm,
  scaleRows,
  swiglu,
} from "../tensor/ops.ts";
import { type Tensor, gradEnabled, tensor } from "../tensor/tensor.ts";
import type { ModelConfig } from "./config.ts";
import type { BlockParams } from "./params.ts";
import { type RopeTable, rotaryPositions, windowPlaces } from "./rope.ts";
import { queryScales } from "./attention-scale.ts";

/** What a KV cache hands back for one slot: all keys/values the current chunk attends to. */
export interface CachedKV {
  k: Float32Array; // (B, Tk, H, D)
  v: Float32Array; // (B, Tk, H, D)
  tk: number;
  kPos: Int32Array; // (Tk) RoPE position of each key
  keyMask?: Uint8Array; // (B, Tk) 0 = never attend (padding)
  kPlaces?: Int32Array; // (B, Tk) each key's Abacus place, when the window counts places
}

/**
 * A KV cache keyed by slot: prelude layer j -> j; core layer j at iteration t ->
 * nPrelude + nCore·t + j; coda layer c -> -(c + 1) (the reference's block_idx).
 */
export interface KVCache {
  /**
   * Store the chunk's k, v (B, T, H, D) at `positions` in `slot`, with its Abacus `places`
   * (B, T) when the window counts them; return what it attends to.
   */
  update(
    slot: number,
    k: Float32Array,
    v: Float32Array,
    positions: Int32Array,
    places?: Int32Array,
  ): CachedKV;
}

export interface ForwardContext {
  batch: number; // B
  seqLen: number; // T of this chunk
  positions: Int32Array; // (T) RoPE positions of the chunk's tokens
  /** (B·T) Abacus places of the chunk's tokens, for a model with them (sequencePlaces, chunkPlaces). */
  places?: Int32Array | undefined;
  cache?: KVCache | undefined;
  /** Observer of module outputs, named like the reference's modules (for traces and parity). */
  trace?: ((module: string, value: Tensor) => void) | undefined;
  /** (B, T) 0 = padding key (left-padded batches); applies when there is no cache. */
  keyMask?: Uint8Array | undefined;
  /**
   * (B, T) RoPE positions per batch row, when rows are offset (left-padded batches); default:
   * `positions` for every row. The causal mask still uses the shared `positions`.
   */
  ropePositions?: Int32Array | undefined;
  /**
   * An equivalent implementation of `sandwichBlock` for inference (same results, fewer
   * allocations), used when there is no trace and the tape is off; see src/model/fast-block.ts.
   * Left undefined, every block runs the Tensor path below.
   */
  fastBlock?: BlockFn | undefined;
}

export type BlockFn = (
  p: BlockParams,
  x: Tensor,
  slot: number,
  env: BlockEnv,
  ctx: ForwardContext,
) => Tensor;

export interface BlockEnv {
  config: ModelConfig;
  rope: RopeTable;
}

/**
 * Causal self-attention with qk bias and interleaved RoPE (over the last `attentionWindow`
 * positions when set, or the keys that many places near under `rotaryPositions` "place"; each
 * query times ln(keys) under `attentionScale` "log-length");
 * x (B, T, C) -> (B, T, C).
 */
export function attentionBranch(
  p: BlockParams,
  x: Tensor,
  slot: number,
  env: BlockEnv,
  ctx: ForwardContext,
): Tensor {
  const { nEmbd: C, nHeads: H } = env.config;
  const D = C / H;
  const B = ctx.batch;
  const T = ctx.seqLen;
  const qkv = linear(x, p.wqkv); // (B, T, 3C) = [q | k | v]
  // q, k: + qk_bias[0], qk_bias[1] (broadcast over B, T), then RoPE; all (B, T, H, D)
  const rot = { positions: rotaryPositions(env.config, ctx), ...env.rope };
  const bias = (i: number) => (p.qkBias ? narrow(p.qkBias, i * C, [C]) : null);
  const scales = queryScales(env.config, ctx.ropePositions ?? ctx.positions, B, T);
  const rotated = headsOf(qkv, 0, H, bias(0), rot);
  const q = scales === null ? rotated : scaleRows(rotated, scales);
  const k = headsOf(qkv, 1, H, bias(1), rot);
  const v = headsOf(qkv, 2, H, null, null);
  const window = env.config.attentionWindow;
  const places = windowPlaces(env.config, ctx);
  const shape = { batch: B, heads: H, headDim: D, tq: T, qPos: ctx.positions, window };
  let y: Tensor;
  if (ctx.cache) {
    const kv = ctx.cache.update(slot, k.data, v.data, ctx.positions, places);
    const kt = tensor(kv.k, [B, kv.tk, H, D]);
    const vt = tensor(kv.v, [B, kv.tk, H, D]);
    const masked = kv.keyMask ? { keyMask: kv.keyMask } : {};
    const counted = places && kv.kPlaces ? { qPlaces: places, kPlaces: kv.kPlaces } : {};
    y = attention(q, kt, vt, { ...shape, tk: kv.tk, kPos: kv.kPos, ...masked, ...counted });
  } else {
    const masked = ctx.keyMask ? { keyMask: ctx.keyMask } : {};
    const counted = places ? { qPlaces: places, kPlaces: places } : {};
    y = attention(q, k, v, { ...shape, tk: T, kPos: ctx.positions, ...masked, ...counted });
  }
  return linear(reshape(y, [B, T, C]), p.proj);
}

/** Gated MLP: proj(silu(gate) · up) with fc rows [gate | up]; x (B, T, C) -> (B, T, C). */
export function mlpBranch(p: BlockParams, x: Tensor): Tensor {
  return linear(swiglu(linear(x, p.fc)), p.mlpProj);
}

/** One sandwich block; `name` is the reference module path, e.g. "transformer.core_block.0". */
export function sandwichBlock(
  p: BlockParams,
  x: Tensor,
  slot: number,
  name: string,
  env: BlockEnv,
  ctx: ForwardContext,
): Tensor {
  const fast = ctx.fastBlock;
  if (fast && !ctx.trace && !gradEnabled()) return fast(p, x, slot, env, ctx);
  const eps = env.config.normEps;
  const attn = attentionBranch(p, rmsNorm(x, p.norm1, eps), slot, env, ctx);
  ctx.trace?.(`${name}.attn`, attn);
  const h = rmsNorm(add(x, attn), p.norm2, eps);
  const mlp = mlpBranch(p, rmsNorm(h, p.norm3, eps));
  ctx.trace?.(`${name}.mlp`, mlp);
  const out = rmsNorm(add(h, mlp), p.norm4, eps);
  ctx.trace?.(name, out);
  return out;
}
