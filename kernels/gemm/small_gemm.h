// Single-threaded float32 GEMM for the small matrices inside attention heads
// ((N,N) x (N,HD) with N ~ 50-200 tokens, HD ~ 16-64), where a BLAS call's fixed
// costs (argument checks, packing, dispatch) outweigh the arithmetic.
//
//   C (M,NV) = alpha * op(A) (M,K) @ B (K,NV)          (accumulate: C += ...)
//   op(A)(i,k) = A[i*a_rs + k*a_cs]: row-major, transposed or strided alike
//   B: row k at B + k*ldb, NV contiguous columns;  C: row i at C + i*ldc
//
// NV must be a multiple of 8 (pad B's rows with zeros and C's row stride to use it
// on other widths). Every C element sums its K products in k order, on any thread
// count (the callers spread whole GEMMs over threads).
#pragma once
#include <cstdint>

namespace pw {

// True when small_gemm runs vectorised kernels (built with AVX2 and FMA); otherwise it
// is a plain loop, correct but slower than gemm(), and callers should prefer gemm().
bool small_gemm_fast();

void small_gemm(int64_t M, int64_t NV, int64_t K, float alpha, const float* A, int64_t a_rs, int64_t a_cs,
                const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc);

}  // namespace pw
