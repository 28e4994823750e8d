/**
 * The rotary-embedding table, computed in float32 exactly as the reference's
 * precompute_freqs_cis: inv_freq_i = 1 / base^(2i / D), θ_{p,i} = p · inv_freq_i, stored as
 * cos and sin of shape (maxPos, D/2). (The reference keeps it as `freqs_cis` [1, maxPos, 1, D/2, 2].)
 * With `rotaryPct` < 1 (loom's extension) only the first R = 2⌊rotaryPct · D/2⌋ dimensions turn,
 * at inv_freq_i = 1 / base^(2i / R) as in GPT-NeoX; the other pairs keep θ = 0 (cos 1, sin 0).
 */
import type { ModelConfig } from "./config.ts";
import type { ForwardContext } from "./layers.ts";

const f32 = Math.fround;

export interface RopeTable {
  cos: Float32Array; // (maxPos, D/2)
  sin: Float32Array; // (maxPos, D/2)
  maxPos: number;
}

export function ropeTable(headDim: number, maxPos: number, base: number, rotaryPct = 1): RopeTable {
  const half = headDim / 2;
  const turning = Math.floor(rotaryPct * half); // pairs that turn
  const invFreq = new Float32Array(half); // 0 beyond `turning`
  for (let i = 0; i < turning; i++) {
    invFreq[i] = f32(1 / f32(base ** f32((2 * i) / (2 * turning))));
  }
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const theta = f32(p * invFreq[i]);
      cos[p * half + i] = Math.cos(theta);
      sin[p * half + i] = Math.sin(theta);
    }
  }
  return { cos, sin, maxPos };
}

/**
 * What turns RoPE for each token of a chunk (T shared by every row, or B·T): its index, or per
 * row when left padding offsets the rows; under `rotary_positions` "place", its Abacus place.
 */
export function rotaryPositions(c: ModelConfig, ctx: ForwardContext): Int32Array {
  switch (c.rotaryPositions) {
    case "index":
      return ctx.ropePositions ?? ctx.positions;
    case "place":
      if (!ctx.places)
        throw new Error('rotary_positions "place": the chunk needs its Abacus places');
      return ctx.places;
  }
}

/**
 * The places (B·T) an attention window counts instead of token indices: under `rotary_positions`
 * "place" a window of W lets a query see the keys less than W places from its own, before or
 * after it, so that every digit sees the same few places at any length; undefined for a window
 * over indices, or none.
 */
export function windowPlaces(c: ModelConfig, ctx: ForwardContext): Int32Array | undefined {
  if (c.attentionWindow <= 0) return undefined;
  switch (c.rotaryPositions) {
    case "index":
      return undefined;
    case "place":
      return rotaryPositions(c, ctx);
  }
}
