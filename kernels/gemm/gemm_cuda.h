// GEMM on CUDA (cuBLAS / cuBLASLt) on raw row-major device pointers, plus the
// small kernels that sit around it in linear layers. Plain C++ declarations; the
// launchers run on cuda::stream() and never sync. Same conventions as gemm.h:
//
//   C[i] = alpha * op(A[i]) @ op(B[i]) + beta * C[i],  i < batch,
//   A[i] = A + i*stride_a (stride 0 repeats one matrix), likewise B and C.
//   op(A): (M,K), stored (M,K) row stride lda, or with trans_a as (K,M); op(B): (K,N)
//   likewise; C: (M,N) row stride ldc. With beta == 0, C is only written.
//
// float honours set_matmul_precision (kernels/gemm/precision.h); double always
// multiplies in float64. Results are bitwise reproducible run to run (cuBLAS on one
// GPU and stream; no split-K atomics are requested).
#pragma once
#include <cstdint>

namespace pw {

template <class T>
void gemm_cuda(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C, int64_t ldc,
               int64_t stride_c);

// y[r, c] = bias[c].   y: (R,C)  bias: (C)
template <class T> void bias_rows_cuda(T* y, const T* bias, int64_t R, int64_t C);
// dbias (C) += sum over rows of dy (R,C) (overwrite: dbias = ...). Fixed-order sums
// (accumulated in double), no atomics: two runs give the same bits.
template <class T> void column_sum_cuda(T* dbias, const T* dy, int64_t R, int64_t C, bool overwrite);

// y = gelu_tanh(pre), elementwise.   y, pre: (n)
template <class T> void gelu_tanh_forward_cuda(T* y, const T* pre, int64_t n);
// dpre = gelu_tanh'(pre) * dy (written, not accumulated: dpre is a scratch buffer).   (n)
template <class T> void gelu_tanh_backward_cuda(T* dpre, const T* pre, const T* dy, int64_t n);

// Fused y = gelu_tanh(x @ w^T + bias), pre = x @ w^T + bias kept for backward.
// x: (R,Din)  w: (Dout,Din)  bias: (Dout)  y, pre: (R,Dout)
// float: one cuBLASLt matmul with the CUBLASLT_EPILOGUE_GELU_AUX_BIAS epilogue when
// cuBLASLt offers an algorithm for the shape (Dout % 8 == 0, aligned pointers);
// otherwise, and for double, bias_rows + gemm_cuda + gelu_tanh_forward_cuda.
// Returns whether the fused epilogue ran. force_unfused: always the composition (tests).
template <class T>
bool linear_gelu_gemm_cuda(T* y, T* pre, const T* x, const T* w, const T* bias, int64_t R, int64_t Din,
                              int64_t Dout, bool force_unfused = false);

}  // namespace pw
