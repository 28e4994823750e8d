// Scaled dot-product attention over (B, T, H, D) tensors, scale 1/sqrt(D); heads interleaved
// in the feature axis, C = H·D. probs (B, H, Tq, Tk) is kept for the backward pass.
// Key j is visible to query i iff kPos[j] <= qPos[i] and keyMask[b, j] != 0, with defaults
// qPos[i] = Tk - Tq + i and kPos[j] = j (bottom-right-aligned causal). A query that sees no
// key gets all-zero probabilities and output 0. Same loops as src/backend/js/attention.ts,
// one (b, h) pair per task: the pairs write disjoint slices, so tasks never conflict.
#include <math.h>
#include <string.h>

#include "loom.h"

typedef struct {
  float *out, *probs, *dq, *dk, *dv;  // outputs of the pass in use; the others NULL
  const float *saved, *dout, *q, *k, *v;  // saved: the forward's probs, for the backward
  const AttentionShape *s;
} AttentionJob;

static inline int visible(const AttentionShape *s, int b, int i, int j) {
  int qp = s->q_pos ? s->q_pos[i] : s->tk - s->tq + i;
  int kp = s->k_pos ? s->k_pos[j] : j;
  return kp <= qp && (!s->key_mask || s->key_mask[(size_t)b * s->tk + j] != 0);
}

LOOM_CLONES static void forward_task(void *ctx, int task) {
  const AttentionJob *g = ctx;
  const AttentionShape *s = g->s;
  const int H = s->heads, D = s->head_dim, tq = s->tq, tk = s->tk, C = H * D;
  const int b = task / H, h = task % H;
  const float scale = 1.0f / sqrtf((float)D);
  for (int i = 0; i < tq; i++) {
    const float *qi = g->q + ((size_t)b * tq + i) * C + h * D;
    float *oi = g->out + ((size_t)b * tq + i) * C + h * D;
    float *p = g->probs + (((size_t)b * H + h) * tq + i) * tk;
    // scores, and their max over the visible keys (masked keys: -inf)
    float max = -INFINITY;
    for (int j = 0; j < tk; j++) {
      p[j] = -INFINITY;
      if (!visible(s, b, i, j)) continue;
      p[j] = dot(qi, g->k + ((size_t)b * tk + j) * C + h * D, D) * scale;
      max = p[j] > max ? p[j] : max;
    }
    // softmax; a row with no visible key stays all zero
    for (int j = 0; j < tk; j++) p[j] = p[j] == -INFINITY ? 0.0f : fast_expf(p[j] - max);
    float total = sum_of(p, tk);
    float inv = total > 0 ? 1.0f / total : 0.0f;
    for (int j = 0; j < tk; j++) p[j] *= inv;
    // out_i = Σ_j p[j] v_j
    memset(oi, 0, D * sizeof(float));
    for (int j = 0; j < tk; j++) {
      if (p[j] == 0) continue;
      const float *vj = g->v + ((size_t)b * tk + j) * C + h * D;
      for (int d = 0; d < D; d++) oi[d] += p[j] * vj[d];
    }
  }
}

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const AttentionShape *s) {
  AttentionJob job = {.out = out, .probs = probs, .q = q, .k = k, .v = v, .s = s};
  int pairs = s->batch * s->heads;
  pool_run(forward_task, &job, pairs, 4.0 * pairs * s->tq * s->tk * s->head_dim);
}

LOOM_CLONES static void backward_task(void *ctx, int task) {
  const AttentionJob *g = ctx;
  const AttentionShape *s = g->s;
  const int H = s->heads, D = s->head_dim, tq = s->tq, tk = s->tk, C = H * D;
  const int b = task / H, h = task % H;
  const float scale = 1.0f / sqrtf((float)D);
  float *dp = pool_scratch(0, tk);
  for (int i = 0; i < tq; i++) {
    size_t qo = ((size_t)b * tq + i) * C + h * D;
    const float *p = g->saved + (((size_t)b * H + h) * tq + i) * tk;
    const float *douti = g->dout + qo;
    // dP[j] = dout_i · v_j;  dv_j += P[j] · dout_i;  Σ_j P[j] dP[j]
    float pdp = 0;
    for (int j = 0; j < tk; j++) {
      dp[j] = 0;
      if (p[j] == 0) continue;
      size_t ko = ((size_t)b * tk + j) * C + h * D;
      float *dvj = g->dv + ko;
      dp[j] = dot(douti, g->v + ko, D);
      for (int d = 0; d < D; d++) dvj[d] += p[j] * douti[d];
      pdp += p[j] * dp[j];
    }
    // softmax backward dS[j] = P[j] (dP[j] - Σ P dP), then through the scaled dot product
    for (int j = 0; j < tk; j++) {
      if (p[j] == 0) continue;
      float ds = p[j] * (dp[j] - pdp) * scale;
      size_t ko = ((size_t)b * tk + j) * C + h * D;
      const float *kj = g->k + ko, *qi = g->q + qo;
      float *dqi = g->dq + qo, *dkj = g->dk + ko;
      for (int d = 0; d < D; d++) {
        dqi[d] += ds * kj[d];
        dkj[d] += ds * qi[d];
      }
    }
  }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, const AttentionShape *s) {
  AttentionJob job = {.saved = probs, .dq = dq, .dk = dk, .dv = dv, .dout = dout,
                      .q = q, .k = k, .v = v, .s = s};
  int pairs = s->batch * s->heads;
  pool_run(backward_task, &job, pairs, 8.0 * pairs * s->tq * s->tk * s->head_dim);
}
