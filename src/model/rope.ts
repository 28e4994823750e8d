/**
 * The rotary-embedding table, computed in float32 exactly as the reference's
 * precompute_freqs_cis: inv_freq_i = 1 / base^(2i / D), θ_{p,i} = p · inv_freq_i, stored as
 * cos and sin of shape (maxPos, D/2). (The reference keeps it as `freqs_cis` [1, maxPos, 1, D/2, 2].)
 */
const f32 = Math.fround;

export interface RopeTable {
  cos: Float32Array; // (maxPos, D/2)
  sin: Float32Array; // (maxPos, D/2)
  maxPos: number;
}

export function ropeTable(headDim: number, maxPos: number, base: number): RopeTable {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = f32(1 / f32(base ** f32((2 * i) / headDim)));
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
