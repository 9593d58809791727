// The kernels of dropout and drop_path. One declaration per kernel and device;
// the dispatch rows are in dropout.cpp. Backward kernels keep the GradBuf
// contract (autograd/function.h): write a fresh buffer, add otherwise.
//
// The masks come from the SAME Philox counters on every device (dropout_math.h
// is PW_HD): element i takes word i%4 of Philox(seed, base + i/4), so a CUDA
// mask equals the CPU's bit for bit.
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// y[i] = keep(u_i) ? x[i] / (1-p) : 0.   x, y: any shape (n elements)
void dropout_forward_cpu(Tensor& y, const Tensor& x, uint64_t seed, uint64_t base, double p);
void dropout_forward_cuda(Tensor& y, const Tensor& x, uint64_t seed, uint64_t base, double p);
// Forward was y = dropout(x) with these counters.  dx[i] (+)= keep(u_i) ? dy[i] / (1-p) : 0.
// dx, dy: any shape (n elements)
void dropout_backward_cpu(GradBuf dx, const Tensor& dy, uint64_t seed, uint64_t base, double p);
void dropout_backward_cuda(GradBuf dx, const Tensor& dy, uint64_t seed, uint64_t base, double p);

// y[b, i] = x[b, i] * factor[b].   x, y: (B, M)  factor: (B), x's dtype and device
void drop_path_forward_cpu(Tensor& y, const Tensor& x, const Tensor& factor);
void drop_path_forward_cuda(Tensor& y, const Tensor& x, const Tensor& factor);
// Forward was y = drop_path(x).  dx[b, i] (+)= dy[b, i] * factor[b].   dx, dy: (B, M)  factor: (B)
void drop_path_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& factor);
void drop_path_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& factor);

}  // namespace pw
