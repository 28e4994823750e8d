// Scaled dot-product attention over (B, T, H, D) tensors, scale 1/sqrt(D); heads interleaved
// in the feature axis, C = H·D. probs (B, H, Tq, Tk) is kept for the backward pass.
// Key j is visible to query i iff kPos[j] <= qPos[i] and keyMask[b, j] != 0 (and, with a window
// w > 0, qPos[i] - kPos[j] < w, or |qPlaces[b, i] - kPlaces[b, j]| < w when the places are
// given), with defaults qPos[i] = Tk - Tq + i and kPos[j] = j
// (bottom-right-aligned causal). A query that sees no key gets all-zero probabilities and
// output 0. The spec is src/backend/js/attention.ts (one query row at a time, a dot per key);
// here each (b, h) pair is a few matrix products on the GEMM micro-kernel (gemm_ex on the
// calling thread, reading the head's rows in place through their strides), and the pairs are
// the pool's tasks: they write disjoint slices, so tasks never conflict. Rows of q, dq are
// q_stride apart and rows of k, v, dk, dv kv_stride apart (both >= C: q, k, v may be views
// into one fused (B, T, 3C) projection); out, dout use C.
//
//   forward   S = Q·Kᵀ (Tq, Tk) -> P = masked softmax(S / √D) -> O = P·V (Tq, D)
//   backward  dP = dO·Vᵀ;  dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √D
//             dQ += dS·K;  dK += dSᵀ·Q;  dV += Pᵀ·dO
#include <math.h>
#include <string.h>

#include "loom.h"

typedef struct {
  float *out, *probs, *dq, *dk, *dv;  // outputs of the pass in use; the others NULL
  const float *saved, *dout, *q, *k, *v;  // saved: the forward's probs, for the backward
  const AttentionShape *s;
} AttentionJob;

static inline int inside_window(const AttentionShape *s, int b, int gap, int i, int j) {
  if (s->window <= 0) return 1;
  if (!s->q_places || !s->k_places) return gap < s->window;
  int d = s->q_places[(size_t)b * s->tq + i] - s->k_places[(size_t)b * s->tk + j];
  return d < s->window && -d < s->window;
}

static inline int visible(const AttentionShape *s, int b, int i, int j) {
  int qp = s->q_pos ? s->q_pos[i] : s->tk - s->tq + i;
  int kp = s->k_pos ? s->k_pos[j] : j;
  if (kp > qp || !inside_window(s, b, qp - kp, i, j)) return 0;
  return !s->key_mask || s->key_mask[(size_t)b * s->tk + j] != 0;
}

// p (Tk) <- masked softmax(p · scale) of query row i; a row with no visible key stays all zero.
LOOM_CLONES static void softmax_row(float *p, const AttentionShape *s, int b, int i, float scale) {
  const int tk = s->tk;
  float max = -INFINITY;
  for (int j = 0; j < tk; j++) {
    p[j] = visible(s, b, i, j) ? p[j] * scale : -INFINITY;
    max = p[j] > max ? p[j] : max;
  }
  if (max == -INFINITY) {
    memset(p, 0, tk * sizeof(float));
    return;
  }
  for (int j = 0; j < tk; j++) p[j] = p[j] == -INFINITY ? 0.0f : fast_expf(p[j] - max);
  float total = sum_of(p, tk);
  float inv = total > 0 ? 1.0f / total : 0.0f;
  for (int j = 0; j < tk; j++) p[j] *= inv;
}

static void forward_task(void *ctx, int task) {
  const AttentionJob *g = ctx;
  const AttentionShape *s = g->s;
  const int H = s->heads, D = s->head_dim, tq = s->tq, tk = s->tk, C = H * D;
  const int b = task / H, h = task % H;
  const float *q = g->q + (size_t)b * tq * s->q_stride + h * D;   // (Tq, D) stride q_stride
  const float *k = g->k + (size_t)b * tk * s->kv_stride + h * D;  // (Tk, D) stride kv_stride
  const float *v = g->v + (size_t)b * tk * s->kv_stride + h * D;
  float *p = g->probs + ((size_t)b * H + h) * tq * tk;  // (Tq, Tk)
  float *o = g->out + (size_t)b * tq * C + h * D;       // (Tq, D) stride C
  gemm_ex(p, tk, q, s->q_stride, k, s->kv_stride, tq, tk, D, 0, 1, 0, 0);  // S = Q·Kᵀ
  const float scale = 1.0f / sqrtf((float)D);
  for (int i = 0; i < tq; i++) softmax_row(p + (size_t)i * tk, s, b, i, scale);
  gemm_ex(o, C, p, tk, v, s->kv_stride, tq, D, tk, 0, 0, 0, 0);  // O = P·V
}

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const AttentionShape *s) {
  AttentionJob job = {.out = out, .probs = probs, .q = q, .k = k, .v = v, .s = s};
  int pairs = s->batch * s->heads;
  pool_run(forward_task, &job, pairs, 4.0 * pairs * s->tq * s->tk * s->head_dim);
}

// ds (Tq, Tk) <- P ⊙ (dP − rowsum(P ⊙ dP)) · scale, in place over dP.
LOOM_CLONES static void softmax_backward(float *ds, const float *p, int tq, int tk, float scale) {
  for (int i = 0; i < tq; i++) {
    float *d = ds + (size_t)i * tk;
    const float *pi = p + (size_t)i * tk;
    float pdp = dot(pi, d, tk);
    for (int j = 0; j < tk; j++) d[j] = pi[j] * (d[j] - pdp) * scale;
  }
}

static void backward_task(void *ctx, int task) {
  const AttentionJob *g = ctx;
  const AttentionShape *s = g->s;
  const int H = s->heads, D = s->head_dim, tq = s->tq, tk = s->tk, C = H * D;
  const int b = task / H, h = task % H;
  const long qs = s->q_stride, ks = s->kv_stride;
  size_t qo = (size_t)b * tq * qs + h * D, ko = (size_t)b * tk * ks + h * D;
  const float *q = g->q + qo, *k = g->k + ko, *v = g->v + ko;
  float *dq = g->dq + qo, *dk = g->dk + ko, *dv = g->dv + ko;
  const float *dout = g->dout + (size_t)b * tq * C + h * D;  // (Tq, D) stride C
  const float *p = g->saved + ((size_t)b * H + h) * tq * tk;
  float *ds = pool_scratch(3, (size_t)tq * tk);  // dP, then dS
  gemm_ex(dv, ks, p, tk, dout, C, tk, D, tq, 1, 0, 1, 0);   // dV += Pᵀ·dO
  gemm_ex(ds, tk, dout, C, v, ks, tq, tk, D, 0, 1, 0, 0);   // dP = dO·Vᵀ
  softmax_backward(ds, p, tq, tk, 1.0f / sqrtf((float)D));
  gemm_ex(dq, qs, ds, tk, k, ks, tq, D, tk, 0, 0, 1, 0);    // dQ += dS·K
  gemm_ex(dk, ks, ds, tk, q, qs, tk, D, tq, 1, 0, 1, 0);    // dK += dSᵀ·Q
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, const AttentionShape *s) {
  AttentionJob job = {.saved = probs, .dq = dq, .dk = dk, .dv = dv, .dout = dout,
                      .q = q, .k = k, .v = v, .s = s};
  int pairs = s->batch * s->heads;
  pool_run(backward_task, &job, pairs, 8.0 * pairs * s->tq * s->tk * s->head_dim);
}
