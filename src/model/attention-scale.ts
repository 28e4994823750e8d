/**
 * Scalable-Softmax (Nakanishi 2025), loom's extension of the reference (config.json
 * `attention_scale` "log-length"): every attention logit q·k/√D is multiplied by ln n, n the
 * number of keys its query sees. Softmax over n keys spreads its weight thinner as n grows, so a
 * key that stood out among the keys of a short training sequence drowns among a longer one's;
 * with the ln n factor its weight no longer fades with n. The factor depends on the query's
 * position alone, so it is applied to q: row (b, t) of q times ln n(b, t).
 *
 *   n(b, t) = position(b, t) + 1, at most `attention_window` when the model has one
 *
 * (position: the row's own, after any left padding, so that padding keys are not counted).
 */
import type { ModelConfig } from "./config.ts";

/** The factors (B·T) of the queries at `positions` (T, or B·T per row); null: none to apply. */
export function queryScales(
  c: ModelConfig,
  positions: Int32Array,
  B: number,
  T: number,
): Float32Array | null {
  switch (c.attentionScale) {
    case "constant":
      return null;
    case "log-length": {
      const scales = new Float32Array(B * T);
      for (let i = 0; i < B * T; i++) {
        const pos = positions.length === T ? positions[i % T] : positions[i];
        const keys = c.attentionWindow > 0 ? Math.min(c.attentionWindow, pos + 1) : pos + 1;
        scales[i] = Math.log(keys);
      }
      return scales;
    }
  }
}

/** q (R, C) with row r times `scales[r]`, in place. */
export function scaleQueries(q: Float32Array, scales: Float32Array, C: number): void {
  for (let r = 0; r < scales.length; r++) {
    const s = scales[r];
    for (let j = r * C; j < (r + 1) * C; j++) q[j] *= s;
  }
}
