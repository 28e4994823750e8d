// The GEMM micro-kernel, instantiated once per instruction set by gemm.c, which defines
// KERNEL (the function name), VEC (floats per vector), MR (rows) and NV (vectors per row).
// C tile (MR, NR = NV*VEC) (+)= Ap (kc, MR) · Bp (kc, NR): Ap and Bp are packed panels, Bp
// 64-byte aligned; each step broadcasts MR values of A against NV vectors of B.
// The MR*NV accumulators stay in registers (GCC vector extensions, loops fully unrolled).

#ifndef KERNEL_VEC
#define KERNEL_CAT(a, b) a##b
#define KERNEL_VEC(name) KERNEL_CAT(name, _vec)
#define KERNEL_VECU(name) KERNEL_CAT(name, _vecu)
#endif

typedef float KERNEL_VEC(KERNEL) __attribute__((vector_size(VEC * 4)));
typedef float KERNEL_VECU(KERNEL) __attribute__((vector_size(VEC * 4), aligned(4)));

static void KERNEL(int kc, const float *restrict ap, const float *restrict bp, float *restrict c,
                   long ldc, int accumulate) {
  KERNEL_VEC(KERNEL) acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = (KERNEL_VEC(KERNEL)){0};
  for (int p = 0; p < kc; p++) {
    KERNEL_VEC(KERNEL) bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = ((const KERNEL_VEC(KERNEL) *)bp)[v];
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] += bv[v] * ap[i];
    ap += MR;
    bp += NV * VEC;
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      KERNEL_VECU(KERNEL) *cv = (KERNEL_VECU(KERNEL) *)(c + i * ldc + v * VEC);
      *cv = accumulate ? *cv + acc[i][v] : acc[i][v];
    }
}

#undef KERNEL
#undef VEC
#undef MR
#undef NV
