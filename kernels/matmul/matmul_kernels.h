// The kernels of matmul, linear and linear_gelu (matmul.h): one declaration per
// kernel and device; the dispatch rows are in matmul.cpp. The CPU backend runs on
// gemm() (oneDNN, kernels/gemm/gemm.h), the CUDA backend on gemm_cuda() (cuBLAS /
// cuBLASLt, kernels/gemm/gemm_cuda.h). Backward kernels keep the GradBuf contract
// (autograd/function.h): a fresh gradient is written (GEMM beta = 0), an
// accumulating one added (beta = 1).
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/function.h"

namespace pw {

// How the batch of a @ b maps onto the batches of its operands.
struct MatmulPlan {
  int64_t M = 0, K = 0, N = 0;
  Shape out_batch;                 // broadcast of a's and b's batch dims
  int64_t a_bn = 1, b_bn = 1;      // number of (M,K) slices in a, (K,N) slices in b
  int64_t out_bn = 1;              // number of (M,N) slices in y
  std::vector<int64_t> ia, ib;     // (out_bn): the a and b slice under each y slice
};

// y = a @ b.   a: (a_bn,M,K)  b: (b_bn,K,N)  y: (out_bn,M,N), slices paired by the plan
void matmul_forward_cpu(Tensor& y, const Tensor& a, const Tensor& b, const MatmulPlan& p);
void matmul_forward_cuda(Tensor& y, const Tensor& a, const Tensor& b, const MatmulPlan& p);
// Forward was y = a @ b:  da (+)= dy @ b^T,  db (+)= a^T @ dy, each summed over the output slices
// that a broadcast operand slice fed. Either buffer may be empty.   da: (a_bn,M,K)  db: (b_bn,K,N)
void matmul_backward_cpu(GradBuf da, GradBuf db, const Tensor& dy, const Tensor& a, const Tensor& b,
                         const MatmulPlan& p);
void matmul_backward_cuda(GradBuf da, GradBuf db, const Tensor& dy, const Tensor& a, const Tensor& b,
                          const MatmulPlan& p);

// y = x @ w^T + b.   x: (R,Din)  w: (Dout,Din)  b: (Dout) or undefined  y: (R,Dout)
void linear_forward_cpu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R, int64_t Din,
                        int64_t Dout);
void linear_forward_cuda(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R, int64_t Din,
                         int64_t Dout);
// Forward was the above:  dx (+)= dy @ w,  dw (+)= dy^T @ x,  db (+)= column sums of dy. Any may be empty.
void linear_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                         int64_t R, int64_t Din, int64_t Dout);
void linear_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                          int64_t R, int64_t Din, int64_t Dout);

// y = gelu_tanh(pre), pre = x @ w^T + b (kept for backward).   x: (R,Din)  w: (Dout,Din)  b: (Dout)
// y, pre: (R,Dout). CUDA float: one cuBLASLt matmul with the GELU_AUX_BIAS epilogue where it can.
void linear_gelu_forward_cpu(Tensor& y, Tensor& pre, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R,
                             int64_t Din, int64_t Dout);
void linear_gelu_forward_cuda(Tensor& y, Tensor& pre, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R,
                              int64_t Din, int64_t Dout);
// Forward was y = gelu_tanh(pre): dpre = gelu_tanh'(pre) * dy (scratch), then linear's backward on dpre.
void linear_gelu_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& pre,
                              const Tensor& x, const Tensor& w, int64_t R, int64_t Din, int64_t Dout);
void linear_gelu_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& pre,
                               const Tensor& x, const Tensor& w, int64_t R, int64_t Din, int64_t Dout);

}  // namespace pw
