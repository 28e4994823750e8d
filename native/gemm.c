// SGEMM: C (m, n) = op(A) (m, k) · op(B) (k, n), or C += ... when `accumulate`. Row-major.
// A is stored (m, k), or (k, m) when trans_a; B is stored (k, n), or (n, k) when trans_b.
//
// gemm_naive is the definition. gemm computes the same sums in blocks (Goto / BLIS style,
// with the roles of A and B swapped for row-major C):
//   tasks:   C is cut into (mc, nc) blocks, two per thread (no barriers: each task packs its
//            own B block; that repeats O(k·n) copying per row block, ~1% of the work)
//   pc loop: a (kc, nc) slice of op(B) is packed into NR-wide panels (stays in L2)
//   ir loop: an (MR, kc) sliver of op(A) is packed (stays in L1)
//   jr loop: the micro-kernel computes an (MR, NR) tile of C, streaming a B panel from L2.
// Edge tiles go through a small buffer. With m <= 4 (decoding), packing costs as much as
// the arithmetic, so gemm_rows computes rows of C directly from A and B instead.
// gemm_ex is the general form: explicit row strides (submatrices, e.g. one head of a (T, H·D)
// tensor) and `threaded` = 0 to run on the calling thread (from inside a pool task).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "loom.h"

#define KC 256  // depth of a packed slice: A sliver 12 KiB + the B panel it meets 32 KiB (L1)
#define NC 768  // width of a B block: kc·nc·4 = 768 KiB (L2)
#define MR_MAX 16
#define NR_MAX 32

void gemm_naive(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
                int trans_b, int accumulate) {
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      float sum = 0;
      for (int p = 0; p < k; p++) {
        float av = trans_a ? a[(size_t)p * m + i] : a[(size_t)i * k + p];
        float bv = trans_b ? b[(size_t)j * k + p] : b[(size_t)p * n + j];
        sum += av * bv;
      }
      c[(size_t)i * n + j] = accumulate ? c[(size_t)i * n + j] + sum : sum;
    }
  }
}

// ---- micro-kernels, one per instruction set (see gemm_kernel.h) ----
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#define KERNEL kernel_avx512
#define VEC 16
#define MR 12
#define NV 2
#include "gemm_kernel.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KERNEL kernel_avx2
#define VEC 8
#define MR 6
#define NV 2
#include "gemm_kernel.h"
#pragma GCC pop_options
#endif

#define KERNEL kernel_generic
#define VEC 4
#define MR 6
#define NV 2
#include "gemm_kernel.h"

typedef void (*kernel_fn)(int kc, const float *ap, const float *bp, float *c, long ldc,
                          int accumulate);
typedef struct {
  kernel_fn fn;
  int mr, nr;
  const char *isa;
} Kernel;

// The widest micro-kernel the CPU runs; LOOM_ISA=avx2|generic caps it (to test the others).
static Kernel pick_kernel(void) {
#if defined(__x86_64__) || defined(__i386__)
  const char *cap = getenv("LOOM_ISA");
  int level = !cap ? 2 : strcmp(cap, "avx2") == 0 ? 1 : strcmp(cap, "generic") == 0 ? 0 : 2;
  __builtin_cpu_init();
  int fma = __builtin_cpu_supports("fma");
  if (level >= 2 && fma && __builtin_cpu_supports("avx512f"))
    return (Kernel){kernel_avx512, 12, 32, "avx512"};
  if (level >= 1 && fma && __builtin_cpu_supports("avx2"))
    return (Kernel){kernel_avx2, 6, 16, "avx2"};
#endif
  return (Kernel){kernel_generic, 6, 8, "generic"};
}

static Kernel kern;
static pthread_once_t kern_once = PTHREAD_ONCE_INIT;
static void kern_init(void) { kern = pick_kernel(); }

const char *gemm_isa(void) {
  pthread_once(&kern_once, kern_init);
  return kern.isa;
}

// ---- packing ----

// bp (panels, kc, nr) <- op(B)[pc : pc+kc, j0 : j0+nb], zero-padded to whole panels;
// ldb = the row stride of B as stored
static void pack_b(float *bp, const float *b, long ldb, int trans_b, int pc, int kc, int j0,
                   int nb, int nr) {
  for (int jp = 0; jp < nb; jp += nr, bp += (size_t)kc * nr) {
    int cols = nb - jp < nr ? nb - jp : nr;
    if (!trans_b) {
      for (int p = 0; p < kc; p++) {
        const float *src = b + (size_t)(pc + p) * ldb + j0 + jp;
        float *dst = bp + (size_t)p * nr;
        memcpy(dst, src, cols * sizeof(float));
        memset(dst + cols, 0, (nr - cols) * sizeof(float));
      }
    } else {
      for (int p = 0; p < kc; p++) {
        const float *src = b + (size_t)(j0 + jp) * ldb + pc + p;
        float *dst = bp + (size_t)p * nr;
        for (int jj = 0; jj < cols; jj++) dst[jj] = src[(size_t)jj * ldb];
        for (int jj = cols; jj < nr; jj++) dst[jj] = 0.0f;
      }
    }
  }
}

// ap (kc, mr) <- op(A)[i : i+rows, pc : pc+kc], zero-padded to mr rows; lda = A's row stride
static void pack_a(float *ap, const float *a, long lda, int trans_a, int i, int rows, int pc,
                   int kc, int mr) {
  if (trans_a) {
    for (int p = 0; p < kc; p++) {
      memcpy(ap + (size_t)p * mr, a + (size_t)(pc + p) * lda + i, rows * sizeof(float));
      memset(ap + (size_t)p * mr + rows, 0, (mr - rows) * sizeof(float));
    }
  } else {
    for (int ii = 0; ii < rows; ii++) {
      const float *src = a + (size_t)(i + ii) * lda + pc;
      for (int p = 0; p < kc; p++) ap[(size_t)p * mr + ii] = src[p];
    }
    for (int ii = rows; ii < mr; ii++)
      for (int p = 0; p < kc; p++) ap[(size_t)p * mr + ii] = 0.0f;
  }
}

// ---- the blocked path ----

typedef struct {
  float *c;
  const float *a, *b;
  long ldc, lda, ldb;  // row strides of C, A and B as stored
  int m, n, k, trans_a, trans_b, accumulate;
  int mc, nc, col_blocks;  // task t covers rows (t / col_blocks)·mc, cols (t % col_blocks)·nc
} GemmJob;

static void gemm_block(void *ctx, int t) {
  const GemmJob *g = ctx;
  const int mr = kern.mr, nr = kern.nr, n = g->n;
  int i0 = t / g->col_blocks * g->mc, i1 = i0 + g->mc < g->m ? i0 + g->mc : g->m;
  int j0 = t % g->col_blocks * g->nc, j1 = j0 + g->nc < n ? j0 + g->nc : n;
  int panels = (j1 - j0 + nr - 1) / nr;
  float *bp = pool_scratch(0, (size_t)panels * nr * KC);
  float *ap = pool_scratch(1, (size_t)mr * KC);
  float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
  for (int pc = 0; pc < g->k; pc += KC) {
    int kc = g->k - pc < KC ? g->k - pc : KC;
    int acc = g->accumulate || pc > 0;
    pack_b(bp, g->b, g->ldb, g->trans_b, pc, kc, j0, j1 - j0, nr);
    for (int i = i0; i < i1; i += mr) {
      int rows = i1 - i < mr ? i1 - i : mr;
      pack_a(ap, g->a, g->lda, g->trans_a, i, rows, pc, kc, mr);
      for (int jp = 0; jp < panels; jp++) {
        int j = j0 + jp * nr, cols = j1 - j < nr ? j1 - j : nr;
        float *ct = g->c + (size_t)i * g->ldc + j;
        const float *bpanel = bp + (size_t)jp * kc * nr;
        if (rows == mr && cols == nr) {
          kern.fn(kc, ap, bpanel, ct, g->ldc, acc);
          continue;
        }
        kern.fn(kc, ap, bpanel, tile, nr, 0);
        for (int ii = 0; ii < rows; ii++)
          for (int jj = 0; jj < cols; jj++)
            ct[(size_t)ii * g->ldc + jj] = acc ? ct[(size_t)ii * g->ldc + jj] + tile[ii * nr + jj]
                                                : tile[ii * nr + jj];
      }
    }
  }
}

// ---- the few-rows path: C rows straight from A and B, columns split over tasks ----

typedef float v16f __attribute__((vector_size(64), aligned(4)));  // unaligned loads allowed

// c[j] (+)= a · b[j, :] for j < n, rows of b `ldb` apart: the matvec of decoding (m = 1).
// Exactly dot() per column (the same 16 lane sums, reduced in the same order, so the result
// is bitwise dot's), but 8 columns at a time: dot() alone is latency-bound (one 16-step
// dependent reduction per column costs about as much as its k/16 FMAs); here 8 independent
// FMA chains run together and the 8 reductions proceed side by side. A separate clone (not
// inlined into gemm_rows): GCC would otherwise build the v16f code for the baseline target.
LOOM_CLONES static void dot_rows(float *restrict c, const float *restrict a,
                                 const float *restrict b, long ldb, int k, int n, int accumulate) {
  const int k16 = k / 16 * 16;
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const float *bj = b + (size_t)j * ldb;
    v16f acc[8];
    for (int r = 0; r < 8; r++) acc[r] = (v16f){0};
    for (int i = 0; i < k16; i += 16) {
      v16f av = *(const v16f *)(a + i);
      for (int r = 0; r < 8; r++) acc[r] += av * *(const v16f *)(bj + (size_t)r * ldb + i);
    }
    float t[8] = {0};
    for (int l = 0; l < 16; l++)
      for (int r = 0; r < 8; r++) t[r] += acc[r][l];
    for (int r = 0; r < 8; r++) {
      const float *br = bj + (size_t)r * ldb;
      for (int i = k16; i < k; i++) t[r] += a[i] * br[i];
      c[j + r] = accumulate ? c[j + r] + t[r] : t[r];
    }
  }
  for (; j < n; j++) {
    float s = dot(a, b + (size_t)j * ldb, k);
    c[j] = accumulate ? c[j] + s : s;
  }
}

typedef struct {
  float *c;
  const float *a, *b;
  long ldc, lda, ldb;
  int m, n, k, trans_a, trans_b, accumulate, chunk;  // task t covers columns t·chunk ...
} RowsJob;

LOOM_CLONES static void gemm_rows(void *ctx, int t) {
  const RowsJob *g = ctx;
  const int n = g->n, k = g->k;
  int j0 = t * g->chunk, j1 = j0 + g->chunk < n ? j0 + g->chunk : n;
  float *arow = pool_scratch(2, k);
  for (int i = 0; i < g->m; i++) {
    for (int p = 0; p < k; p++)
      arow[p] = g->trans_a ? g->a[(size_t)p * g->lda + i] : g->a[(size_t)i * g->lda + p];
    float *restrict ci = g->c + (size_t)i * g->ldc;
    if (g->trans_b) {  // C[i, j] = A[i, :] · B[j, :]
      dot_rows(ci + j0, arow, g->b + (size_t)j0 * g->ldb, g->ldb, k, j1 - j0, g->accumulate);
      continue;
    }
    if (!g->accumulate) memset(ci + j0, 0, (j1 - j0) * sizeof(float));
    for (int p = 0; p < k; p++) {  // C[i, :] += A[i, p] · B[p, :]
      const float *restrict bp = g->b + (size_t)p * g->ldb;
      float av = arow[p];
      for (int j = j0; j < j1; j++) ci[j] += av * bp[j];
    }
  }
}

void gemm_ex(float *c, long ldc, const float *a, long lda, const float *b, long ldb, int m, int n,
             int k, int trans_a, int trans_b, int accumulate, int threaded) {
  pthread_once(&kern_once, kern_init);
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int i = 0; !accumulate && i < m; i++) memset(c + (size_t)i * ldc, 0, n * sizeof(float));
    return;
  }
  double work = 2.0 * m * n * k;
  int parallel = threaded && pool_parallel(work);
  if (m <= 4) {
    int tasks = parallel ? pool_split((n + 63) / 64) : 1;
    int chunk = ((n + tasks - 1) / tasks + 15) / 16 * 16;
    RowsJob job = {c, a, b, ldc, lda, ldb, m, n, k, trans_a, trans_b, accumulate, chunk};
    if (!parallel) gemm_rows(&job, 0);
    else pool_run(gemm_rows, &job, (n + chunk - 1) / chunk, work);
    return;
  }
  // Blocks: nc evenly split under NC; rows split only to give every thread two tasks.
  int col_blocks = (n + NC - 1) / NC;
  int nc = ((n + col_blocks - 1) / col_blocks + kern.nr - 1) / kern.nr * kern.nr;
  col_blocks = (n + nc - 1) / nc;
  int slivers = (m + kern.mr - 1) / kern.mr;
  int want = parallel ? 2 * pool_threads() : 1;
  int row_blocks = (want + col_blocks - 1) / col_blocks;
  if (row_blocks > slivers) row_blocks = slivers;
  int mc = (slivers + row_blocks - 1) / row_blocks * kern.mr;
  row_blocks = (m + mc - 1) / mc;
  GemmJob job = {c, a, b, ldc, lda, ldb, m, n, k, trans_a, trans_b, accumulate, mc, nc,
                 col_blocks};
  if (!parallel) {
    for (int t = 0; t < row_blocks * col_blocks; t++) gemm_block(&job, t);
    return;
  }
  pool_run(gemm_block, &job, row_blocks * col_blocks, work);
}

void gemm(float *c, const float *a, const float *b, int m, int n, int k, int trans_a, int trans_b,
          int accumulate) {
  gemm_ex(c, n, a, trans_a ? m : k, b, trans_b ? k : n, m, n, k, trans_a, trans_b, accumulate, 1);
}
