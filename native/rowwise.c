// Row-wise kernels: RMSNorm, interleaved RoPE, SwiGLU, softmax cross-entropy, AdamW, row sums. Same
// arithmetic as src/backend/js/pointwise.ts (the spec); rows are shared out over the pool.
//   rmsnorm:  x, out, dx, dout (R, C); w, dw (C); rstd (R)
//   rope:     x, out (B, T, H, D); cos, sin (maxPos, D/2); positions (T)
//   swiglu:   gu, dgu (R, 2N) = [g | u] per row; out, dout (R, N)
//   xent:     logits, dlogits (R, V); losses, labels (R)
//   adamw:    param, grad, m, v (n)
//   add_rows: dst, a, b rows with their own strides; bias (width)
#include <math.h>
#include <string.h>

#include "loom.h"

// ---- RMSNorm: out = x · rsqrt(mean(x²) + eps) · w ----

typedef struct {
  float *out, *rstd, *dx, *dw_partial;  // dw_partial (ntasks, C): one dw row per task
  const float *x, *w, *dout, *saved_rstd;
  int rows, dim, ntasks;
  float eps;
} RmsNormJob;

LOOM_CLONES static void rmsnorm_forward_task(void *ctx, int t) {
  const RmsNormJob *g = ctx;
  const int C = g->dim;
  int r0, r1;
  task_range(t, g->ntasks, g->rows, &r0, &r1);
  for (int r = r0; r < r1; r++) {
    const float *x = g->x + (size_t)r * C;
    float *out = g->out + (size_t)r * C;
    float rs = (float)(1.0 / sqrt((double)(dot(x, x, C) / C) + g->eps));
    g->rstd[r] = rs;
    for (int i = 0; i < C; i++) out[i] = (x[i] * rs) * g->w[i];
  }
}

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int rows, int dim,
                     float eps) {
  RmsNormJob job = {.out = out, .rstd = rstd, .x = x, .w = w, .rows = rows, .dim = dim,
                    .eps = eps, .ntasks = pool_split(rows)};
  pool_run(rmsnorm_forward_task, &job, job.ntasks, 4.0 * rows * dim);
}

// dx += r·w·dy − r³/C · x · Σ(w·dy·x);  dw += dy·x·r (into the task's own dw row)
LOOM_CLONES static void rmsnorm_backward_task(void *ctx, int t) {
  const RmsNormJob *g = ctx;
  const int C = g->dim;
  float *dw = g->dw_partial + (size_t)t * C;
  int r0, r1;
  task_range(t, g->ntasks, g->rows, &r0, &r1);
  memset(dw, 0, C * sizeof(float));
  for (int r = r0; r < r1; r++) {
    const float *dy = g->dout + (size_t)r * C, *x = g->x + (size_t)r * C, *w = g->w;
    float *dx = g->dx + (size_t)r * C;
    float rs = g->saved_rstd[r];
    float lanes[16] = {0}, wdx = 0;  // Σ w·dy·x in 16 partial sums, as dot() does
    int i = 0;
    for (; i + 16 <= C; i += 16)
      for (int l = 0; l < 16; l++) lanes[l] += w[i + l] * dy[i + l] * x[i + l];
    for (int l = 0; l < 16; l++) wdx += lanes[l];
    for (; i < C; i++) wdx += w[i] * dy[i] * x[i];
    float c = rs * rs * rs * wdx / C;
    for (i = 0; i < C; i++) {
      dx[i] += rs * w[i] * dy[i] - c * x[i];
      dw[i] += dy[i] * x[i] * rs;
    }
  }
}

void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int rows, int dim) {
  int ntasks = pool_split(rows);
  RmsNormJob job = {.dx = dx, .dw_partial = pool_scratch(2, (size_t)ntasks * dim), .x = x,
                    .w = w, .dout = dout, .saved_rstd = rstd, .rows = rows, .dim = dim,
                    .ntasks = ntasks};
  pool_run(rmsnorm_backward_task, &job, ntasks, 8.0 * rows * dim);
  for (int t = 0; t < ntasks; t++)
    for (int i = 0; i < dim; i++) dw[i] += job.dw_partial[(size_t)t * dim + i];
}

// ---- RoPE: a' = a·cosθ − b·sinθ, b' = b·cosθ + a·sinθ on pairs (2i, 2i+1) ----

typedef struct {
  float *out;  // may alias x: each pair is read before it is written
  const float *x, *cos_t, *sin_t;
  const int32_t *positions;
  int T, heads, head_dim, tokens, ntasks;
  float sign;  // -1 for the inverse rotation (the backward)
} RopeJob;

LOOM_CLONES static void rope_task(void *ctx, int t) {
  const RopeJob *g = ctx;
  const int half = g->head_dim / 2;
  int r0, r1;  // tokens (b, t), flattened
  task_range(t, g->ntasks, g->tokens, &r0, &r1);
  for (int r = r0; r < r1; r++) {
    const float *cs = g->cos_t + (size_t)g->positions[r % g->T] * half;
    const float *sn = g->sin_t + (size_t)g->positions[r % g->T] * half;
    for (int h = 0; h < g->heads; h++) {
      size_t o = ((size_t)r * g->heads + h) * g->head_dim;
      for (int i = 0; i < half; i++) {
        float c = cs[i], s = g->sign * sn[i];
        float a = g->x[o + 2 * i], b = g->x[o + 2 * i + 1];
        g->out[o + 2 * i] = a * c - b * s;
        g->out[o + 2 * i + 1] = b * c + a * s;
      }
    }
  }
}

void rope(float *out, const float *x, const float *cos_t, const float *sin_t,
          const int32_t *positions, int T, int batch, int heads, int head_dim, int inverse) {
  RopeJob job = {.out = out, .x = x, .cos_t = cos_t, .sin_t = sin_t, .positions = positions,
                 .T = T, .heads = heads, .head_dim = head_dim, .tokens = batch * T,
                 .ntasks = pool_split(batch * T), .sign = inverse ? -1.0f : 1.0f};
  pool_run(rope_task, &job, job.ntasks, 3.0 * batch * T * heads * head_dim);
}

// ---- SwiGLU: out = silu(g) · u ----

typedef struct {
  float *out, *dgu;
  const float *gu, *dout;
  int rows, hidden, ntasks;
} SwigluJob;

static inline float sigmoid(float g) { return 1.0f / (1.0f + fast_expf(-g)); }

LOOM_CLONES static void swiglu_forward_task(void *ctx, int t) {
  const SwigluJob *j = ctx;
  const int N = j->hidden;
  int r0, r1;
  task_range(t, j->ntasks, j->rows, &r0, &r1);
  for (int r = r0; r < r1; r++) {
    const float *g = j->gu + (size_t)r * 2 * N, *u = g + N;
    float *out = j->out + (size_t)r * N;
    for (int i = 0; i < N; i++) out[i] = g[i] * sigmoid(g[i]) * u[i];
  }
}

void swiglu_forward(float *out, const float *gu, int rows, int hidden) {
  SwigluJob job = {.out = out, .gu = gu, .rows = rows, .hidden = hidden,
                   .ntasks = pool_split(rows)};
  pool_run(swiglu_forward_task, &job, job.ntasks, 20.0 * rows * hidden);
}

// dg += dy·u·σ(g)(1 + g(1 − σ(g))),  du += dy·silu(g)
LOOM_CLONES static void swiglu_backward_task(void *ctx, int t) {
  const SwigluJob *j = ctx;
  const int N = j->hidden;
  int r0, r1;
  task_range(t, j->ntasks, j->rows, &r0, &r1);
  for (int r = r0; r < r1; r++) {
    const float *g = j->gu + (size_t)r * 2 * N, *u = g + N, *dy = j->dout + (size_t)r * N;
    float *dg = j->dgu + (size_t)r * 2 * N, *du = dg + N;
    for (int i = 0; i < N; i++) {
      float sg = sigmoid(g[i]);
      dg[i] += dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
      du[i] += dy[i] * g[i] * sg;
    }
  }
}

void swiglu_backward(float *dgu, const float *dout, const float *gu, int rows, int hidden) {
  SwigluJob job = {.dgu = dgu, .gu = gu, .dout = dout, .rows = rows, .hidden = hidden,
                   .ntasks = pool_split(rows)};
  pool_run(swiglu_backward_task, &job, job.ntasks, 30.0 * rows * hidden);
}

// ---- softmax cross-entropy: loss = logsumexp(logits) − logits[label]; dlogits = p − onehot ----

typedef struct {
  float *losses, *dlogits;
  const float *logits;
  const int32_t *labels;
  int rows, vocab, ntasks;
} XentJob;

LOOM_CLONES static void xent_task(void *ctx, int t) {
  const XentJob *j = ctx;
  const int V = j->vocab;
  int r0, r1;
  task_range(t, j->ntasks, j->rows, &r0, &r1);
  for (int r = r0; r < r1; r++) {
    const float *l = j->logits + (size_t)r * V;
    float *d = j->dlogits + (size_t)r * V;
    int label = j->labels[r];
    if (label < 0) {  // ignored row
      j->losses[r] = 0;
      memset(d, 0, V * sizeof(float));
      continue;
    }
    float max = max_of(l, V);
    for (int i = 0; i < V; i++) d[i] = fast_expf(l[i] - max);
    double total = sum_of(d, V);
    j->losses[r] = (float)(log(total) + max - l[label]);
    float inv = (float)(1.0 / total);
    for (int i = 0; i < V; i++) d[i] *= inv;
    d[label] -= 1.0f;
  }
}

void cross_entropy(float *losses, float *dlogits, const float *logits, const int32_t *labels,
                   int rows, int vocab) {
  XentJob job = {.losses = losses, .dlogits = dlogits, .logits = logits, .labels = labels,
                 .rows = rows, .vocab = vocab, .ntasks = pool_split(rows)};
  pool_run(xent_task, &job, job.ntasks, 20.0 * rows * vocab);
}

// ---- AdamW (Loshchilov & Hutter): decoupled decay, bias-corrected moments; f64 like the js ----

typedef struct {
  float *param, *m, *v;
  const float *grad;
  size_t n;
  int ntasks;
  double lr, beta1, beta2, eps, weight_decay, bc1, bc2;
} AdamWJob;

LOOM_CLONES static void adamw_task(void *ctx, int t) {
  const AdamWJob *j = ctx;
  size_t i0 = j->n * t / j->ntasks, i1 = j->n * (t + 1) / j->ntasks;
  for (size_t i = i0; i < i1; i++) {
    double g = j->grad[i];
    j->m[i] = (float)(j->beta1 * j->m[i] + (1 - j->beta1) * g);
    j->v[i] = (float)(j->beta2 * j->v[i] + (1 - j->beta2) * g * g);
    double m_hat = j->m[i] / j->bc1, v_hat = j->v[i] / j->bc2;
    double p = j->param[i];
    j->param[i] = (float)(p - j->lr * (m_hat / (sqrt(v_hat) + j->eps) + j->weight_decay * p));
  }
}

void adamw(float *param, const float *grad, float *m, float *v, size_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, double step) {
  int ntasks = pool_split(n / 4096 < 1024 ? (int)(n / 4096) + 1 : 1024);
  AdamWJob job = {.param = param, .m = m, .v = v, .grad = grad, .n = n, .ntasks = ntasks,
                  .lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                  .weight_decay = weight_decay, .bc1 = 1 - pow(beta1, step),
                  .bc2 = 1 - pow(beta2, step)};
  pool_run(adamw_task, &job, ntasks, 10.0 * n);
}

// ---- strided row sums: dst row (+)= a row (+ b row) (+ bias) ----

typedef struct {
  float *dst;
  const float *a, *b, *bias;  // b, bias may be NULL
  long ds, as, bs;
  int rows, width, accumulate, by_rows, ntasks;
} AddRowsJob;

// The common operand patterns as separate loops, so each vectorizes without per-element tests.
LOOM_CLONES static void add_rows_task(void *ctx, int t) {
  const AddRowsJob *g = ctx;
  int r0 = 0, r1 = g->rows, j0 = 0, j1 = g->width;
  if (g->by_rows) task_range(t, g->ntasks, g->rows, &r0, &r1);
  else task_range(t, g->ntasks, g->width, &j0, &j1);
  const float *bias = g->bias;
  for (int r = r0; r < r1; r++) {
    float *d = g->dst + (size_t)r * g->ds;
    const float *a = g->a + (size_t)r * g->as;
    const float *b = g->b ? g->b + (size_t)r * g->bs : NULL;
    if (!g->accumulate && !b && !bias) {
      memcpy(d + j0, a + j0, (size_t)(j1 - j0) * sizeof(float));
    } else if (g->accumulate && !b && !bias) {
      for (int j = j0; j < j1; j++) d[j] += a[j];
    } else if (!g->accumulate && b && !bias) {
      for (int j = j0; j < j1; j++) d[j] = a[j] + b[j];
    } else if (!g->accumulate && !b && bias) {
      for (int j = j0; j < j1; j++) d[j] = a[j] + bias[j];
    } else {
      for (int j = j0; j < j1; j++) {
        float v = a[j];
        if (b) v += b[j];
        if (bias) v += bias[j];
        d[j] = g->accumulate ? d[j] + v : v;
      }
    }
  }
}

void add_rows(float *dst, const float *a, const float *b, const float *bias, int rows, int width,
              long ds, long as, long bs, int accumulate) {
  int by_rows = rows >= 2 * pool_threads();  // few long rows: split the columns instead
  AddRowsJob job = {.dst = dst, .a = a, .b = b, .bias = bias, .ds = ds, .as = as, .bs = bs,
                    .rows = rows, .width = width, .accumulate = accumulate, .by_rows = by_rows,
                    .ntasks = pool_split(by_rows ? rows : (width + 1023) / 1024)};
  pool_run(add_rows_task, &job, job.ntasks, 1.0 * rows * width);
}
