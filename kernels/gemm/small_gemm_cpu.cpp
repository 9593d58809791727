#include "kernels/gemm/small_gemm.h"

#include "runtime/check.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PW_SMALL_GEMM_AVX2 1
#endif

namespace pw {

namespace {

#ifdef PW_SMALL_GEMM_AVX2
// One (MR, 8*NVEC) block of C: MR*NVEC accumulators in registers (6x2 = 12 of the
// 16 ymm), each step over k one broadcast of A per row and NVEC loads of B.
template <int MR, int NVEC>
inline void block(int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
                  bool accumulate, float* C, int64_t ldc) {
  // (every loop over i and v fully unrolled, or GCC keeps c in memory)
  __m256 c[MR][NVEC];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NVEC; ++v) c[i][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m256 b[NVEC];
#pragma GCC unroll 2
    for (int v = 0; v < NVEC; ++v) b[v] = _mm256_loadu_ps(B + k * ldb + 8 * v);
    const float* a = A + k * a_cs;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * a_rs);
#pragma GCC unroll 2
      for (int v = 0; v < NVEC; ++v) c[i][v] = _mm256_fmadd_ps(ai, b[v], c[i][v]);
    }
  }
  const __m256 al = _mm256_set1_ps(alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NVEC; ++v) {
      float* p = C + i * ldc + 8 * v;
      __m256 r = _mm256_mul_ps(c[i][v], al);
      if (accumulate) r = _mm256_add_ps(_mm256_loadu_ps(p), r);
      _mm256_storeu_ps(p, r);
    }
}

// Rows [i0, M) of one column panel of width 8*NVEC, in blocks of 6 rows and a remainder.
template <int NVEC>
void panel(int64_t M, int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
           bool acc, float* C, int64_t ldc) {
  int64_t i = 0;
  for (; i + 6 <= M; i += 6) block<6, NVEC>(K, alpha, A + i * a_rs, a_rs, a_cs, B, ldb, acc, C + i * ldc, ldc);
  const float* a = A + i * a_rs;
  float* c = C + i * ldc;
  switch (M - i) {
    case 5: block<5, NVEC>(K, alpha, a, a_rs, a_cs, B, ldb, acc, c, ldc); break;
    case 4: block<4, NVEC>(K, alpha, a, a_rs, a_cs, B, ldb, acc, c, ldc); break;
    case 3: block<3, NVEC>(K, alpha, a, a_rs, a_cs, B, ldb, acc, c, ldc); break;
    case 2: block<2, NVEC>(K, alpha, a, a_rs, a_cs, B, ldb, acc, c, ldc); break;
    case 1: block<1, NVEC>(K, alpha, a, a_rs, a_cs, B, ldb, acc, c, ldc); break;
    default: break;
  }
}
#endif

}  // namespace

bool small_gemm_fast() {
#ifdef PW_SMALL_GEMM_AVX2
  return true;
#else
  return false;
#endif
}

void small_gemm(int64_t M, int64_t NV, int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_cs,
                const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc) {
  PW_CHECK(M >= 0 && K >= 0 && NV >= 0 && NV % 8 == 0 && ldb >= NV && ldc >= NV, "small_gemm: M=", M, " NV=", NV,
           " K=", K, " ldb=", ldb, " ldc=", ldc, "; NV must be a multiple of 8 within both row strides");
#ifdef PW_SMALL_GEMM_AVX2
  int64_t j = 0;
  for (; j + 16 <= NV; j += 16) panel<2>(M, K, alpha, A, a_rs, a_cs, B + j, ldb, accumulate, C + j, ldc);
  if (j < NV) panel<1>(M, K, alpha, A, a_rs, a_cs, B + j, ldb, accumulate, C + j, ldc);
#else
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < NV; ++j) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += A[i * a_rs + k * a_cs] * B[k * ldb + j];
      C[i * ldc + j] = accumulate ? C[i * ldc + j] + alpha * s : alpha * s;
    }
#endif
}

}  // namespace pw
