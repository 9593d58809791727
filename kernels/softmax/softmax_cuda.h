// CUDA launchers of softmax / log_softmax along a dim, x seen as (O, R, I).
// I == 1 (the dim is innermost): one block per row, fixed-order block reductions;
// else one thread per column (o, i), walking r (adjacent threads read adjacent i).
// Sums run in double. Deterministic.
#pragma once
#include <cstdint>

namespace pw {

// y = softmax(x) (Log: log_softmax) along R.   x, y: (O, R, I)
template <bool Log, class T> void softmax_forward_cuda(T* y, const T* x, int64_t O, int64_t R, int64_t I);
// Forward was y = softmax(x) (Log: log_softmax); dx += dL/dx from y and dy.   dx, y, dy: (O, R, I)
template <bool Log, class T> void softmax_backward_cuda(T* dx, const T* y, const T* dy, int64_t O, int64_t R, int64_t I);

}  // namespace pw
