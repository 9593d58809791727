// The kernels of softmax and log_softmax along one dim, x seen as (O, R, I)
// (R the reduced dim). One declaration per kernel and device; the dispatch rows
// are in softmax.cpp. Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise.
//
// CPU: I == 1, one task per row; else blocks of kColBlock columns walk down R.
// CUDA: I == 1, one block per row with fixed-order block reductions; else one
// thread per column (o, i), walking r (adjacent threads read adjacent i).
// Sums run in double on both. Deterministic.
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// y = softmax(x) along R.   x, y: (O, R, I)
void softmax_forward_cpu(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I);
void softmax_forward_cuda(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I);
// Forward was y = softmax(x).  dx (+)= y * (dy - sum_R(dy * y)).   dx, y, dy: (O, R, I)
void softmax_backward_cpu(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I);
void softmax_backward_cuda(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I);

// y = log_softmax(x) = x - logsumexp(x) along R.   x, y: (O, R, I)
void log_softmax_forward_cpu(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I);
void log_softmax_forward_cuda(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I);
// Forward was y = log_softmax(x).  dx (+)= dy - exp(y) * sum_R(dy).   dx, y, dy: (O, R, I)
void log_softmax_backward_cpu(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I);
void log_softmax_backward_cuda(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I);

}  // namespace pw
