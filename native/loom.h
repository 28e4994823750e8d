// loom native backend: declarations shared by the C files. The kernels mirror
// src/backend/js/*.ts (the spec) one for one; see src/backend/backend.ts for the contract.
//
// Shape legend: R rows (batch x positions), B batch, Tq/Tk query/key positions, H heads,
// D head dim, V vocab, N hidden width of the gated MLP, C row width. Row-major everywhere.
// Output arguments come first; kernels named ..._backward ACCUMULATE (+=) into gradients.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Runtime multiversioning for the row kernels: one clone per x86 level, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOOM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LOOM_CLONES
#endif

// ---- pool.c: one process-wide thread pool ----
typedef void (*task_fn)(void *ctx, int task);
void pool_init(void);    // idempotent; sizes the pool from LOOM_THREADS or the usable cores
int pool_threads(void);  // threads a parallel pool_run computes with, the caller included
int pool_limit(int n);   // use at most n of them from now on (1 = every kernel on its caller)
// Whether `work` (~flops) is worth waking the pool for: below ~1e6 the wake-up costs more.
int pool_parallel(double work);
// Runs fn(ctx, t) for every t in [0, ntasks) and returns when all are done: across the pool
// when pool_parallel(work), else (or when another JS thread holds the pool) on the caller.
void pool_run(task_fn fn, void *ctx, int ntasks, double work);
// How many tasks to cut `items` independent rows into: up to 4 per thread.
int pool_split(int items);
// Task t of n covers items [*lo, *hi).
static inline void task_range(int t, int n, int items, int *lo, int *hi) {
  *lo = (int)((long long)items * t / n);
  *hi = (int)((long long)items * (t + 1) / n);
}
// A 64-byte aligned, grow-only buffer owned by the calling OS thread; `slot` 0..3
// (0, 1: gemm packing; 2: gemm_rows and the row kernels' callers; 3: attention).
float *pool_scratch(int slot, size_t nfloats);

// ---- gemm.c ----
const char *gemm_isa(void);  // "avx512", "avx2" or "generic": the micro-kernel in use
void gemm(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
          int trans_b, int accumulate);
// The same with row strides ldc, lda, ldb of C, A, B as stored; threaded = 0: calling thread only.
void gemm_ex(float *c, long ldc, const float *a, long lda, const float *b, long ldb, int m, int n,
             int k, int trans_a, int trans_b, int accumulate, int threaded);
void gemm_naive(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
                int trans_b, int accumulate);

// ---- attention.c ----
typedef struct {
  int batch, heads, head_dim, tq, tk;  // B, H, D, Tq, Tk
  int q_stride, kv_stride;             // row strides of q, dq and of k, v, dk, dv (>= H·D)
  const int32_t *q_pos;                // (Tq) or NULL: Tk - Tq + i
  const int32_t *k_pos;                // (Tk) or NULL: j
  const uint8_t *key_mask;             // (B, Tk) or NULL: all keys
  int window;                          // > 0: also qPos[i] - kPos[j] < window; 0: no limit
  const int32_t *q_places;             // (B, Tq) or NULL; with k_places the window counts
  const int32_t *k_places;             // (B, Tk)     these, both ways: |q - k| < window
} AttentionShape;
void attention_forward(float *out, float *probs, const float *q, const float *k,
                       const float *v, const AttentionShape *s);
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, const AttentionShape *s);

// ---- rowwise.c ----
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int rows, int dim,
                     float eps);
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int rows, int dim);
void rope(float *out, const float *x, const float *cos_t, const float *sin_t,
          const int32_t *positions, int T, int batch, int heads, int head_dim, int inverse);
void add_rows(float *dst, const float *a, const float *b, const float *bias, int rows, int width,
              long ds, long as, long bs, int accumulate);
void swiglu_forward(float *out, const float *gu, int rows, int hidden);
void swiglu_backward(float *dgu, const float *dout, const float *gu, int rows, int hidden);
void cross_entropy(float *losses, float *dlogits, const float *logits, const int32_t *labels,
                   int rows, int vocab);
void adamw(float *param, const float *grad, float *m, float *v, size_t n, double lr,
           double beta1, double beta2, double eps, double weight_decay, double step);

// exp(x) for float, branch-free so loops over it vectorise: Cephes' degree-5 polynomial,
// relative error ~1e-7; exactly 0 below -87.3 (where expf goes subnormal), +inf-safe clamp above.
static inline float fast_expf(float x) {
  float xc = x > 88.3762626647949f ? 88.3762626647949f : x;
  xc = xc < -87.3365447504f ? -87.3365447504f : xc;
  float n = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return x < -87.3365447504f ? 0.0f : y * scale;
}

// Σ a[i]·b[i] with 16 independent partial sums, so it vectorises without -ffast-math.
static inline float dot(const float *a, const float *b, int n) {
  float s[16] = {0};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) s[l] += a[i + l] * b[i + l];
  float t = 0;
  for (int l = 0; l < 16; l++) t += s[l];
  for (; i < n; i++) t += a[i] * b[i];
  return t;
}

// Σ a[i], in 16 partial sums like dot().
static inline float sum_of(const float *a, int n) {
  float s[16] = {0};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) s[l] += a[i + l];
  float t = 0;
  for (int l = 0; l < 16; l++) t += s[l];
  for (; i < n; i++) t += a[i];
  return t;
}

// max a[i] (-inf when n == 0), in 16 lanes.
static inline float max_of(const float *a, int n) {
  float s[16];
  for (int l = 0; l < 16; l++) s[l] = -__builtin_inff();
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) s[l] = a[i + l] > s[l] ? a[i + l] : s[l];
  float t = -__builtin_inff();
  for (int l = 0; l < 16; l++) t = s[l] > t ? s[l] : t;
  for (; i < n; i++) t = a[i] > t ? a[i] : t;
  return t;
}
