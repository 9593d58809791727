// CUDA launchers of the activations that are not one-input maps (those run
// through kernels/elementwise/unary_cuda.h): glu.
#pragma once
#include <cstdint>

namespace pw {

// y = a * sigmoid(b), a = x[:, 0], b = x[:, 1].   x: (O, 2, HI), y: (O, HI)
template <class T> void glu_forward_cuda(T* y, const T* x, int64_t O, int64_t HI);
// da += dy * s, db += dy * a * s * (1 - s), s = sigmoid(b).   dx, x: (O, 2, HI), dy: (O, HI)
template <class T> void glu_backward_cuda(T* dx, const T* x, const T* dy, int64_t O, int64_t HI);

}  // namespace pw
