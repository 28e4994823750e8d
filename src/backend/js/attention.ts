// Causal softmax attention on (B, T, H, D) tensors, heads interleaved in the feature axis the way
// the reference reshapes Wqkv's output. One (b, h) pair at a time: scores (Tq, Tk) -> masked
// softmax -> weighted sum of v. The probabilities are kept for the backward pass. Rows of q/dq
// are qs = qStride floats apart, rows of k/v/dk/dv ks = kvStride apart; out/dout are dense.
import type { AttentionShape } from "../backend.ts";

/** Whether query i may see key j (see AttentionShape). */
function visible(s: AttentionShape, b: number, i: number, j: number): boolean {
  const qp = s.qPos ? s.qPos[i] : s.tk - s.tq + i;
  const kp = s.kPos ? s.kPos[j] : j;
  if (kp > qp || !insideWindow(s, b, qp - kp, i, j)) return false;
  return s.keyMask ? s.keyMask[b * s.tk + j] !== 0 : true;
}

/** Whether key j is inside query i's window: `gap` positions back, or its places apart. */
function insideWindow(s: AttentionShape, b: number, gap: number, i: number, j: number): boolean {
  const w = s.window ?? 0;
  if (w <= 0) return true;
  if (!s.qPlaces || !s.kPlaces) return gap < w;
  return Math.abs(s.qPlaces[b * s.tq + i] - s.kPlaces[b * s.tk + j]) < w;
}

export function attentionForward(
  out: Float32Array, // (B, Tq, H, D)
  probs: Float32Array, // (B, H, Tq, Tk)
  q: Float32Array, // (B, Tq, H, D)
  k: Float32Array, // (B, Tk, H, D)
  v: Float32Array, // (B, Tk, H, D)
  s: AttentionShape,
): void {
  const { batch, heads: H, headDim: D, tq, tk } = s;
  const C = H * D;
  const [qs, ks] = [s.qStride ?? C, s.kvStride ?? C];
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < tq; i++) {
        const qo = (b * tq + i) * qs + h * D;
        const oo = (b * tq + i) * C + h * D;
        const po = ((b * H + h) * tq + i) * tk;
        // scores and running max over the visible keys
        let max = -Infinity;
        for (let j = 0; j < tk; j++) {
          if (!visible(s, b, i, j)) {
            probs[po + j] = -Infinity;
            continue;
          }
          const ko = (b * tk + j) * ks + h * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          const score = dot * scale;
          probs[po + j] = score;
          if (score > max) max = score;
        }
        // softmax (a row with no visible key gets all-zero weights and output 0)
        let sum = 0;
        for (let j = 0; j < tk; j++) {
          const e = max === -Infinity ? 0 : Math.exp(probs[po + j] - max);
          probs[po + j] = e;
          sum += e;
        }
        const inv = sum > 0 ? 1 / sum : 0;
        for (let j = 0; j < tk; j++) probs[po + j] *= inv;
        // out = probs · v
        for (let d = 0; d < D; d++) out[oo + d] = 0;
        for (let j = 0; j < tk; j++) {
          const p = probs[po + j];
          if (p === 0) continue;
          const vo = (b * tk + j) * ks + h * D;
          for (let d = 0; d < D; d++) out[oo + d] += p * v[vo + d];
        }
      }
    }
  }
}

export function attentionBackward(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dout: Float32Array, // (B, Tq, H, D)
  probs: Float32Array, // (B, H, Tq, Tk)
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: AttentionShape,
): void {
  const { batch, heads: H, headDim: D, tq, tk } = s;
  const C = H * D;
  const [qs, ks] = [s.qStride ?? C, s.kvStride ?? C];
  const scale = 1 / Math.sqrt(D);
  const dp = new Float32Array(tk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < tq; i++) {
        const qo = (b * tq + i) * qs + h * D;
        const oo = (b * tq + i) * C + h * D;
        const po = ((b * H + h) * tq + i) * tk;
        // dP[j] = dout_i · v_j ; dv_j += P[j] · dout_i
        let dot = 0; // Σ_j P[j] dP[j]
        for (let j = 0; j < tk; j++) {
          const p = probs[po + j];
          if (p === 0) {
            dp[j] = 0;
            continue;
          }
          const vo = (b * tk + j) * ks + h * D;
          let g = 0;
          for (let d = 0; d < D; d++) {
            g += dout[oo + d] * v[vo + d];
            dv[vo + d] += p * dout[oo + d];
          }
          dp[j] = g;
          dot += p * g;
        }
        // softmax backward: dS[j] = P[j] (dP[j] - Σ P dP); then through the scaled dot product
        for (let j = 0; j < tk; j++) {
          const p = probs[po + j];
          if (p === 0) continue;
          const ds = p * (dp[j] - dot) * scale;
          const ko = (b * tk + j) * ks + h * D;
          for (let d = 0; d < D; d++) {
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  }
}
