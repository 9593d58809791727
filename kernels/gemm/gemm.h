// GEMM on raw row-major pointers: the workhorse under matmul, linear, conv and
// attention. Not an autograd op: callers (matmul, conv, ...) own the graph.
//
//   C = alpha * op(A) @ op(B) + beta * C
//   op(A): (M,K), stored as A (M,K) with row stride lda, or, with trans_a, as (K,M)
//   op(B): (K,N), stored as B (K,N) with row stride ldb, or, with trans_b, as (N,K)
//   C:     (M,N) with row stride ldc
//
// float32 runs on oneDNN's dnnl_sgemm (JIT AVX2/AVX-512 kernels picked at run time,
// threaded with OpenMP; no environment variable needed). float64 is our own
// cache-blocked loop: it serves the gradient checks, so it is correct rather than fast.
// With beta == 0, C is only written: NaNs already in C do not leak into the result.
//
// NOTE: dnnl_sgemm may split K between threads for long-K shapes (weight gradients),
// so float32 results can differ in the last bits between thread counts (never between
// runs with the same thread count). The float64 loop never splits K.
#pragma once
#include <cstdint>
#include <iosfwd>

namespace pw {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// `batch` independent GEMMs of one shape: C[i] = alpha * op(A[i]) @ op(B[i]) + beta * C[i].
// A[i], B[i] may repeat (broadcast); the C[i] must not overlap, since the batch may be
// spread over threads (each GEMM then single-threaded) when the GEMMs are small.
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* const* A, int64_t lda, const float* const* B, int64_t ldb, float beta,
                  float* const* C, int64_t ldc);
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                  const double* const* A, int64_t lda, const double* const* B, int64_t ldb, double beta,
                  double* const* C, int64_t ldc);

// Strided form: A[i] = A + i*stride_a (stride 0 repeats one matrix), likewise B and C
// (stride_c must be >= M*ldc-ish: the C[i] must not overlap).
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                          float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                          int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c);
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                          double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                          int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc, int64_t stride_c);

// `patchwork bench gemm`: float32 GFLOP/s at ViT shapes on 1 and 2 threads, plus the
// batched attention GEMMs, printed as a table (under 15 s).
void bench_gemm(std::ostream& os);

}  // namespace pw
