// CUDA launchers of the pooling ops (pool.h). Plain C++ declarations; they run on
// cuda::stream() and never sync. Window rules are pool_math.h's, shared with the CPU.
// Every backward gathers: one thread per input element sums the outputs whose
// windows cover it (fixed order) and adds once: no atomics, the same bits every run.
#pragma once
#include <cstdint>

namespace pw {

// A 2-D pooling of P planes (H,W) into (OH,OW); 1-D pooling is H = 1, kH = 1.
struct PoolDims {
  int64_t P, H, W, OH, OW, kH, kW, sH, sW, padH, padW;
};

// y = window means.   x: (P,H,W)  y: (P,OH,OW)
template <class T> void avg_pool_forward_cuda(T* y, const T* x, const PoolDims& d, bool count_include_pad);
// dx[h,w] += sum over covering windows of dy / divisor.
template <class T> void avg_pool_backward_cuda(T* dx, const T* dy, const PoolDims& d, bool count_include_pad);
// y = window max (NaN wins, first max in row-major order), argmax = its flat index h*W+w.
template <class T> void max_pool_forward_cuda(T* y, int64_t* argmax, const T* x, const PoolDims& d);
// dx[i] += sum of dy[o] over covering outputs o with argmax[o] == i.
template <class T> void max_pool_backward_cuda(T* dx, const T* dy, const int64_t* argmax, const PoolDims& d);
// y[p] = mean of plane p.   x: (P,HW)  y: (P)
template <class T> void global_avg_pool_forward_cuda(T* y, const T* x, int64_t P, int64_t HW);
// dx[p, i] += dy[p] / HW.
template <class T> void global_avg_pool_backward_cuda(T* dx, const T* dy, int64_t P, int64_t HW);

}  // namespace pw
