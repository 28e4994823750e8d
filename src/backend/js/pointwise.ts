// Row-wise kernels: RMSNorm, interleaved RoPE, SwiGLU, softmax cross-entropy, the AdamW update and
// strided row sums.
import type { AdamWHyper, RowsShape } from "../backend.ts";

/** y = x · rsqrt(mean(x²) + eps) · w per row, as the reference's RMSNorm (fp32). */
export function rmsNormForward(
  out: Float32Array, // (R, C)
  rstd: Float32Array, // (R)
  x: Float32Array, // (R, C)
  w: Float32Array, // (C)
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const rs = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
    rstd[r] = rs;
    for (let i = 0; i < dim; i++) out[o + i] = Math.fround(x[o + i] * rs) * w[i];
  }
}

/** dx += r·w·dy − r³/C · x · Σ(w·dy·x);  dw += dy · x · r. */
export function rmsNormBackward(
  dx: Float32Array,
  dw: Float32Array,
  dout: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  rows: number,
  dim: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const rs = rstd[r];
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += w[i] * dout[o + i] * x[o + i];
    const c = (rs * rs * rs * dot) / dim;
    for (let i = 0; i < dim; i++) {
      dx[o + i] += rs * w[i] * dout[o + i] - c * x[o + i];
      dw[i] += dout[o + i] * x[o + i] * rs;
    }
  }
}

/** a' = a·cosθ − b·sinθ, b' = b·cosθ + a·sinθ on pairs (2i, 2i+1); θ negated when inverse. */
export function rope(
  out: Float32Array, // (B, T, H, D)
  x: Float32Array, // (B, T, H, D)
  cos: Float32Array, // (maxPos, D/2)
  sin: Float32Array, // (maxPos, D/2)
  positions: Int32Array, // (T)
  batch: number,
  heads: number,
  headDim: number,
  inverse: boolean,
): void {
  const T = positions.length;
  const half = headDim / 2;
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      const to = positions[t] * half;
      for (let h = 0; h < heads; h++) {
        const o = ((b * T + t) * heads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const c = cos[to + i];
          const s = sign * sin[to + i];
          const a = x[o + 2 * i];
          const bb = x[o + 2 * i + 1];
          out[o + 2 * i] = a * c - bb * s;
          out[o + 2 * i + 1] = bb * c + a * s;
        }
      }
    }
  }
}

const sigmoid = (g: number): number => 1 / (1 + Math.exp(-g));

/** out = silu(g) · u, gu rows = [g (N) | u (N)]. */
export function swigluForward(out: Float32Array, gu: Float32Array, rows: number, N: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * 2 * N;
    for (let i = 0; i < N; i++) {
      const g = gu[o + i];
      out[r * N + i] = Math.fround(g * sigmoid(g)) * gu[o + N + i];
    }
  }
}

/** dg += dy·u·σ(g)(1 + g(1 − σ(g))),  du += dy·silu(g). */
export function swigluBackward(
  dgu: Float32Array,
  dout: Float32Array,
  gu: Float32Array,
  rows: number,
  N: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * 2 * N;
    for (let i = 0; i < N; i++) {
      const g = gu[o + i];
      const u = gu[o + N + i];
      const dy = dout[r * N + i];
      const sg = sigmoid(g);
      dgu[o + i] += dy * u * sg * (1 + g * (1 - sg));
      dgu[o + N + i] += dy * g * sg;
    }
  }
}

/** losses[r] = logsumexp(logits[r]) − logits[r][label]; dlogits = softmax − onehot. */
export function crossEntropy(
  losses: Float32Array, // (R)
  dlogits: Float32Array, // (R, V)
  logits: Float32Array, // (R, V)
  labels: Int32Array, // (R), < 0 = ignored
  rows: number,
  V: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const label = labels[r];
    if (label < 0) {
      losses[r] = 0;
      dlogits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i] > max) max = logits[o + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - max);
    losses[r] = Math.log(sum) + max - logits[o + label];
    for (let i = 0; i < V; i++) dlogits[o + i] = Math.exp(logits[o + i] - max) / sum;
    dlogits[o + label] -= 1;
  }
}

/** AdamW (Loshchilov & Hutter): decoupled decay, bias-corrected moments. */
export function adamw(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  h: AdamWHyper,
): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = h;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let i = 0; i < p.length; i++) {
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    const mHat = m[i] / bc1;
    const vHat = v[i] / bc2;
    p[i] -= lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * p[i]);
  }
}

/** Strided row sums (see Backend.addRows): dst row (+)= a row (+ b row) (+ bias). */
export function addRows(
  dst: Float32Array,
  a: Float32Array,
  b: Float32Array | null,
  bias: Float32Array | null,
  s: RowsShape,
): void {
  const { rows, width, accumulate } = s;
  const [ds, as, bs] = [s.dstStride ?? width, s.aStride ?? width, s.bStride ?? width];
  for (let r = 0; r < rows; r++) {
    const [d, ao, bo] = [r * ds, r * as, r * bs];
    for (let j = 0; j < width; j++) {
      let t = a[ao + j]; // each sum rounded to float32, as in C
      if (b !== null) t = Math.fround(t + b[bo + j]);
      if (bias !== null) t = Math.fround(t + bias[j]);
      dst[d + j] = accumulate ? dst[d + j] + t : t;
    }
  }
}
