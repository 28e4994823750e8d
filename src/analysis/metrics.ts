/**
 * Per-step measures of a latent trajectory, all on plain vectors (one token's latent, C values,
 * or one row of logits, V values). Pure and float64 inside.
 *
 *   distance_i     = ‖z_i − z_N‖                         to the final state
 *   relativeStep_i = ‖z_i − z_{i−1}‖ / ‖z_i‖             Huginn's "latent-diff" exit value
 *   cosine_i       = z_i · z_N / (‖z_i‖ ‖z_N‖)
 *   entropy(p)     = −Σ p log p                          nats
 *   KL(p ‖ q)      = Σ p (log p − log q)                 nats; the lens uses KL(p_final ‖ p_i)
 */

export type Vec = ArrayLike<number>;

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: Vec): number {
  return Math.sqrt(dot(a, a));
}

/** ‖a − b‖₂. */
export function distance(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** cos(a, b); 0 when either vector is zero. */
export function cosine(a: Vec, b: Vec): number {
  const n = norm(a) * norm(b);
  return n > 0 ? dot(a, b) / n : 0;
}

/** a − b as a new Float64Array. */
export function sub(a: Vec, b: Vec): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i];
  return out;
}

/** ‖z_i − z_{i−1}‖ / ‖z_i‖ (0 when z_i = 0 and the step is 0, +Inf when only z_i = 0). */
export function relativeStep(prev: Vec, cur: Vec): number {
  const d = distance(cur, prev);
  const n = norm(cur);
  return n > 0 ? d / n : d > 0 ? Infinity : 0;
}

/** log-softmax of one row of logits, in float64. */
export function logSoftmax(logits: Vec): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/** Entropy in nats of the distribution with log-probabilities `logp`. */
export function entropy(logp: Vec): number {
  let h = 0;
  for (let i = 0; i < logp.length; i++) {
    const p = Math.exp(logp[i]);
    if (p > 0) h -= p * logp[i];
  }
  return h;
}

/** KL(p ‖ q) in nats from log-probabilities; terms with p = 0 contribute 0. */
export function kl(logp: Vec, logq: Vec): number {
  let s = 0;
  for (let i = 0; i < logp.length; i++) {
    const p = Math.exp(logp[i]);
    if (p > 0) s += p * (logp[i] - logq[i]);
  }
  return Math.max(0, s);
}

/** The k most likely ids with their probabilities, most likely first (ties: lower id first). */
export function topK(logp: Vec, k: number): { id: number; p: number }[] {
  const best: { id: number; p: number }[] = [];
  for (let i = 0; i < logp.length; i++) {
    const p = Math.exp(logp[i]);
    if (best.length === k && p <= best[k - 1].p) continue;
    let j = best.length < k ? best.length : k - 1;
    while (j > 0 && best[j - 1].p < p) j--;
    best.splice(j, 0, { id: i, p });
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Convergence step: the first recorded step (1-based) from which the relative step size stays
 * below `eps` until the end; null when the last step is still at or above `eps`.
 * `relSteps[k]` is the relative step size of step k + 1.
 */
export function convergenceStep(relSteps: readonly number[], eps: number): number | null {
  let first: number | null = null;
  for (let k = relSteps.length - 1; k >= 0; k--) {
    if (!(relSteps[k] < eps)) break;
    first = k + 1;
  }
  return first;
}
