// N-API glue: the Backend methods of src/backend/backend.ts as plain functions over typed
// arrays, passed by pointer (no copies). Shapes come as numbers, in the order of the C
// signatures; every array length and index is checked here, so a wrong call throws instead
// of touching memory it should not. Exports: the kernels, plus `threads` and `isa`.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "loom.h"

#define MAX_ARGS 24  // >= the longest argument list (attentionBackward: 21)

// One call's arguments. The first failure throws and sets ok = 0; later getters do nothing.
typedef struct {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int ok;
} Call;

static napi_value fail(Call *c, const char *code, const char *msg) {
  if (c->ok) (code[0] == 'T' ? napi_throw_type_error : napi_throw_range_error)(c->env, NULL, msg);
  c->ok = 0;
  return NULL;
}

static Call call_start(napi_env env, napi_callback_info info, size_t expect) {
  Call c = {.env = env, .argc = MAX_ARGS, .ok = 1};
  if (napi_get_cb_info(env, info, &c.argc, c.argv, NULL, NULL) != napi_ok || c.argc < expect) {
    char msg[96];
    snprintf(msg, sizeof msg, "loom native: expected %zu arguments, got %zu", expect, c.argc);
    fail(&c, "TypeError", msg);
  }
  return c;
}

static int int_arg(Call *c, size_t i, const char *name) {
  int32_t v = 0;
  if (!c->ok) return 0;
  if (napi_get_value_int32(c->env, c->argv[i], &v) != napi_ok || v < 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "loom native: %s must be a non-negative integer", name);
    fail(c, "TypeError", msg);
    return 0;
  }
  return v;
}

static double num_arg(Call *c, size_t i, const char *name) {
  double v = 0;
  if (c->ok && napi_get_value_double(c->env, c->argv[i], &v) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "loom native: %s must be a number", name);
    fail(c, "TypeError", msg);
  }
  return v;
}

static int bool_arg(Call *c, size_t i, const char *name) {
  bool v = false;
  if (c->ok && napi_get_value_bool(c->env, c->argv[i], &v) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "loom native: %s must be a boolean", name);
    fail(c, "TypeError", msg);
  }
  return v;
}

// A typed array of the wanted type with at least `need` elements; NULL when `optional` and the
// argument is null or undefined.
static void *array_arg(Call *c, size_t i, const char *name, napi_typedarray_type want,
                       size_t need, int optional, size_t *len_out) {
  static const char *type_names[] = {[napi_float32_array] = "Float32Array",
                                     [napi_int32_array] = "Int32Array",
                                     [napi_uint8_array] = "Uint8Array"};
  char msg[160];
  if (!c->ok) return NULL;
  napi_valuetype vt;
  napi_typeof(c->env, c->argv[i], &vt);
  if (optional && (vt == napi_null || vt == napi_undefined)) return NULL;
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (napi_is_typedarray(c->env, c->argv[i], &is) != napi_ok || !is ||
      napi_get_typedarray_info(c->env, c->argv[i], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != want) {
    snprintf(msg, sizeof msg, "loom native: %s must be a %s", name, type_names[want]);
    return fail(c, "TypeError", msg);
  }
  if (len < need) {
    snprintf(msg, sizeof msg, "loom native: %s has %zu elements, needs %zu", name, len, need);
    return fail(c, "RangeError", msg);
  }
  if (len_out) *len_out = len;
  return data;
}

#define F32(i, name, need) ((float *)array_arg(&c, i, name, napi_float32_array, need, 0, NULL))

// gemm(c, a, b, m, n, k, transA, transB, accumulate)
static napi_value js_gemm(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 9);
  size_t m = int_arg(&c, 3, "m"), n = int_arg(&c, 4, "n"), k = int_arg(&c, 5, "k");
  int ta = bool_arg(&c, 6, "transA"), tb = bool_arg(&c, 7, "transB");
  int acc = bool_arg(&c, 8, "accumulate");
  float *cm = F32(0, "c", m * n), *a = F32(1, "a", m * k), *b = F32(2, "b", k * n);
  if (c.ok) gemm(cm, a, b, (int)m, (int)n, (int)k, ta, tb, acc);
  return NULL;
}

// The shape arguments of both attention calls, from argument `i` on:
// batch, heads, headDim, tq, tk, qStride, kvStride, qPos | null, kPos | null, keyMask | null,
// window, qPlaces | null, kPlaces | null
static AttentionShape attention_shape(Call *c, size_t i) {
  AttentionShape s = {int_arg(c, i, "batch"), int_arg(c, i + 1, "heads"),
                      int_arg(c, i + 2, "headDim"), int_arg(c, i + 3, "tq"),
                      int_arg(c, i + 4, "tk"), int_arg(c, i + 5, "qStride"),
                      int_arg(c, i + 6, "kvStride"), NULL, NULL, NULL,
                      int_arg(c, i + 10, "window"), NULL, NULL};
  if (c->ok && (s.q_stride < s.heads * s.head_dim || s.kv_stride < s.heads * s.head_dim))
    fail(c, "RangeError", "loom native: attention row strides must be >= heads * headDim");
  s.q_pos = array_arg(c, i + 7, "qPos", napi_int32_array, s.tq, 1, NULL);
  s.k_pos = array_arg(c, i + 8, "kPos", napi_int32_array, s.tk, 1, NULL);
  s.key_mask = array_arg(c, i + 9, "keyMask", napi_uint8_array, (size_t)s.batch * s.tk, 1, NULL);
  s.q_places = array_arg(c, i + 11, "qPlaces", napi_int32_array, (size_t)s.batch * s.tq, 1, NULL);
  s.k_places = array_arg(c, i + 12, "kPlaces", napi_int32_array, (size_t)s.batch * s.tk, 1, NULL);
  return s;
}

// Elements a strided (rows, C) view spans: the last row needs only C.
static size_t span(size_t rows, size_t stride, size_t C) {
  return rows ? (rows - 1) * stride + C : 0;
}

// attentionForward(out, probs, q, k, v, ...shape)
static napi_value js_attention_forward(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 18);
  AttentionShape s = attention_shape(&c, 5);
  size_t C = (size_t)s.heads * s.head_dim, rq = (size_t)s.batch * s.tq;
  size_t nq = span(rq, s.q_stride, C), nk = span((size_t)s.batch * s.tk, s.kv_stride, C);
  float *out = F32(0, "out", rq * C), *q = F32(2, "q", nq), *k = F32(3, "k", nk);
  float *v = F32(4, "v", nk), *probs = F32(1, "probs", (size_t)s.batch * s.heads * s.tq * s.tk);
  if (c.ok) attention_forward(out, probs, q, k, v, &s);
  return NULL;
}

// attentionBackward(dq, dk, dv, dout, probs, q, k, v, ...shape)
static napi_value js_attention_backward(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 21);
  AttentionShape s = attention_shape(&c, 8);
  size_t C = (size_t)s.heads * s.head_dim, rq = (size_t)s.batch * s.tq;
  size_t nq = span(rq, s.q_stride, C), nk = span((size_t)s.batch * s.tk, s.kv_stride, C);
  float *dq = F32(0, "dq", nq), *dk = F32(1, "dk", nk), *dv = F32(2, "dv", nk);
  float *dout = F32(3, "dout", rq * C), *q = F32(5, "q", nq), *k = F32(6, "k", nk);
  float *v = F32(7, "v", nk), *probs = F32(4, "probs", (size_t)s.batch * s.heads * s.tq * s.tk);
  if (c.ok) attention_backward(dq, dk, dv, dout, probs, q, k, v, &s);
  return NULL;
}

// rmsNormForward(out, rstd, x, w, rows, dim, eps)
static napi_value js_rmsnorm_forward(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 7);
  size_t R = int_arg(&c, 4, "rows"), C = int_arg(&c, 5, "dim");
  float eps = (float)num_arg(&c, 6, "eps");
  float *out = F32(0, "out", R * C), *rstd = F32(1, "rstd", R), *x = F32(2, "x", R * C);
  float *w = F32(3, "w", C);
  if (c.ok) rmsnorm_forward(out, rstd, x, w, (int)R, (int)C, eps);
  return NULL;
}

// rmsNormBackward(dx, dw, dout, x, w, rstd, rows, dim)
static napi_value js_rmsnorm_backward(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 8);
  size_t R = int_arg(&c, 6, "rows"), C = int_arg(&c, 7, "dim");
  float *dx = F32(0, "dx", R * C), *dw = F32(1, "dw", C), *dout = F32(2, "dout", R * C);
  float *x = F32(3, "x", R * C), *w = F32(4, "w", C), *rstd = F32(5, "rstd", R);
  if (c.ok) rmsnorm_backward(dx, dw, dout, x, w, rstd, (int)R, (int)C);
  return NULL;
}

// rope(out, x, cos, sin, positions, batch, heads, headDim, inverse); T = positions.length
static napi_value js_rope(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 9);
  size_t B = int_arg(&c, 5, "batch"), H = int_arg(&c, 6, "heads"), D = int_arg(&c, 7, "headDim");
  int inverse = bool_arg(&c, 8, "inverse");
  size_t T = 0, ncos = 0, nsin = 0;
  int32_t *pos = array_arg(&c, 4, "positions", napi_int32_array, 0, 0, &T);
  float *out = F32(0, "out", B * T * H * D), *x = F32(1, "x", B * T * H * D);
  float *cs = array_arg(&c, 2, "cos", napi_float32_array, 0, 0, &ncos);
  float *sn = array_arg(&c, 3, "sin", napi_float32_array, 0, 0, &nsin);
  if (c.ok && D % 2 != 0) fail(&c, "RangeError", "loom native: rope needs an even headDim");
  size_t max_pos = D ? (ncos < nsin ? ncos : nsin) / (D / 2) : 0;
  for (size_t t = 0; c.ok && D && t < T; t++)
    if (pos[t] < 0 || (size_t)pos[t] >= max_pos)
      fail(&c, "RangeError", "loom native: a rope position is outside the cos/sin tables");
  if (c.ok) rope(out, x, cs, sn, pos, (int)T, (int)B, (int)H, (int)D, inverse);
  return NULL;
}

// addRows(dst, a, b | null, bias | null, rows, width, dstStride, aStride, bStride, accumulate)
static napi_value js_add_rows(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 10);
  size_t R = int_arg(&c, 4, "rows"), W = int_arg(&c, 5, "width");
  size_t ds = int_arg(&c, 6, "dstStride"), as = int_arg(&c, 7, "aStride");
  size_t bs = int_arg(&c, 8, "bStride");
  int acc = bool_arg(&c, 9, "accumulate");
  float *dst = F32(0, "dst", span(R, ds, W)), *a = F32(1, "a", span(R, as, W));
  float *b = array_arg(&c, 2, "b", napi_float32_array, span(R, bs, W), 1, NULL);
  float *bias = array_arg(&c, 3, "bias", napi_float32_array, W, 1, NULL);
  if (c.ok && R > 0 && W > 0) add_rows(dst, a, b, bias, (int)R, (int)W, ds, as, bs, acc);
  return NULL;
}

// swigluForward(out, gu, rows, hidden)
static napi_value js_swiglu_forward(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 4);
  size_t R = int_arg(&c, 2, "rows"), N = int_arg(&c, 3, "hidden");
  float *out = F32(0, "out", R * N), *gu = F32(1, "gu", R * 2 * N);
  if (c.ok) swiglu_forward(out, gu, (int)R, (int)N);
  return NULL;
}

// swigluBackward(dgu, dout, gu, rows, hidden)
static napi_value js_swiglu_backward(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 5);
  size_t R = int_arg(&c, 3, "rows"), N = int_arg(&c, 4, "hidden");
  float *dgu = F32(0, "dgu", R * 2 * N), *dout = F32(1, "dout", R * N);
  float *gu = F32(2, "gu", R * 2 * N);
  if (c.ok) swiglu_backward(dgu, dout, gu, (int)R, (int)N);
  return NULL;
}

// crossEntropy(losses, dlogits, logits, labels, rows, vocab)
static napi_value js_cross_entropy(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 6);
  size_t R = int_arg(&c, 4, "rows"), V = int_arg(&c, 5, "vocab");
  float *losses = F32(0, "losses", R), *dlogits = F32(1, "dlogits", R * V);
  float *logits = F32(2, "logits", R * V);
  int32_t *labels = array_arg(&c, 3, "labels", napi_int32_array, R, 0, NULL);
  for (size_t r = 0; c.ok && r < R; r++)
    if (labels[r] >= 0 && (size_t)labels[r] >= V)
      fail(&c, "RangeError", "loom native: a label is >= vocab");
  if (c.ok) cross_entropy(losses, dlogits, logits, labels, (int)R, (int)V);
  return NULL;
}

// adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step)
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 10);
  size_t n = 0;
  float *param = array_arg(&c, 0, "param", napi_float32_array, 0, 0, &n);
  float *grad = F32(1, "grad", n), *m = F32(2, "m", n), *v = F32(3, "v", n);
  double lr = num_arg(&c, 4, "lr"), beta1 = num_arg(&c, 5, "beta1");
  double beta2 = num_arg(&c, 6, "beta2"), eps = num_arg(&c, 7, "eps");
  double wd = num_arg(&c, 8, "weightDecay"), step = num_arg(&c, 9, "step");
  if (c.ok) adamw(param, grad, m, v, n, lr, beta1, beta2, eps, wd, step);
  return NULL;
}

// threads() -> the threads a parallel kernel computes with now
static napi_value js_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_int32(env, pool_threads(), &out);
  return out;
}

// limitThreads(n) -> the threads kernels use from now on, at most n (process-wide)
static napi_value js_limit_threads(napi_env env, napi_callback_info info) {
  Call c = call_start(env, info, 1);
  double n = num_arg(&c, 0, "n");
  napi_value out;
  napi_create_int32(env, c.ok ? pool_limit((int)n) : pool_threads(), &out);
  return out;
}

// Keep freed large blocks in the process heap instead of handing them back to the OS. Every
// tensor is a fresh Float32Array (calloc), and glibc serves blocks over its mmap threshold
// (128 KiB .. 32 MiB) with new pages: each first touch is a page fault (~6 µs here), 2800 of
// them for one (2048, 1408) activation, as long as the GEMM that fills it. PyTorch's peer
// numbers use the same settings through MALLOC_*_ environment variables (performance notes
// §6.2). Process-wide, so LOOM_MALLOC_TUNE=0 leaves malloc alone.
static void tune_malloc(void) {
#ifdef __GLIBC__
  const char *env = getenv("LOOM_MALLOC_TUNE");
  if (env && strcmp(env, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 256 << 20);  // blocks below 256 MiB come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);    // and the heap is not shrunk below 1 GiB of slack
  mallopt(M_TOP_PAD, 64 << 20);          // grown 64 MiB at a time
#endif
}

NAPI_MODULE_INIT() {
  tune_malloc();
  pool_init();
  napi_value isa;
  napi_create_string_utf8(env, gemm_isa(), NAPI_AUTO_LENGTH, &isa);
  napi_property_descriptor props[] = {
      {"gemm", NULL, js_gemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attentionForward", NULL, js_attention_forward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attentionBackward", NULL, js_attention_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rmsNormForward", NULL, js_rmsnorm_forward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rmsNormBackward", NULL, js_rmsnorm_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rope", NULL, js_rope, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addRows", NULL, js_add_rows, NULL, NULL, NULL, napi_enumerable, NULL},
      {"swigluForward", NULL, js_swiglu_forward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"swigluBackward", NULL, js_swiglu_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"crossEntropy", NULL, js_cross_entropy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adamw", NULL, js_adamw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"threads", NULL, js_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"limitThreads", NULL, js_limit_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isa", NULL, NULL, NULL, NULL, isa, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
