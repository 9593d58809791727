// The kernels of the activations that are not one-input maps (those run through
// kernels/elementwise/unary.h): glu. One declaration per kernel and
// device; the dispatch rows are in activation.cpp. Backward kernels keep the
// GradBuf contract (autograd/function.h): write a fresh buffer, add otherwise.
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// y = a * sigmoid(b), a = x[:, 0], b = x[:, 1].   x: (O, 2, HI), y: (O, HI)
void glu_forward_cpu(Tensor& y, const Tensor& x, int64_t O, int64_t HI);
void glu_forward_cuda(Tensor& y, const Tensor& x, int64_t O, int64_t HI);
// Forward was y = glu(x).  da (+)= dy * s, db (+)= dy * a * s * (1 - s), s = sigmoid(b).
// dx, x: (O, 2, HI), dy: (O, HI)
void glu_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& dy, int64_t O, int64_t HI);
void glu_backward_cuda(GradBuf dx, const Tensor& x, const Tensor& dy, int64_t O, int64_t HI);

}  // namespace pw
