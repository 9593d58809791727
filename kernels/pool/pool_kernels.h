// The kernels of the pooling ops (pool.h): one declaration per kernel and device;
// the dispatch rows are in pool.cpp. Every op pools P = B*C independent planes.
// Backward kernels keep the GradBuf contract (autograd/function.h): write a fresh
// buffer, add otherwise. Both backends gather: every dx element sums all of its
// contributions first and is then written or added to ONCE, so accumulation is
// exact and results never depend on the thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/function.h"
#include "kernels/pool/pool_math.h"

namespace pw {

// A 2-D pooling of P planes (H,W) into (OH,OW); 1-D pooling is H = 1, kH = 1.
// Plain sizes, passed by value to the CUDA kernels.
struct PoolDims {
  int64_t P, H, W, OH, OW, kH, kW, sH, sW, padH, padW;
};

// The geometry as the ops build it (pool.cpp), with each output row's / column's
// window computed once and shared by all planes (the CPU kernels read them).
struct PoolGeom {
  int64_t P = 0, H = 0, W = 0, OH = 0, OW = 0;
  int64_t kH = 1, kW = 1, sH = 1, sW = 1, padH = 0, padW = 0;
  bool ceil_mode = false, count_include_pad = true;
  std::vector<math::PoolWindow> rows;  // (OH)
  std::vector<math::PoolWindow> cols;  // (OW)
  int64_t work() const { return P * OH * OW * kH * kW; }
  PoolDims dims() const { return PoolDims{P, H, W, OH, OW, kH, kW, sH, sW, padH, padW}; }
};

// y = window means (divisor per math::avg_pool_divisor).   x: (P,H,W)  y: (P,OH,OW)
void avg_pool_forward_cpu(Tensor& y, const Tensor& x, const PoolGeom& g);
void avg_pool_forward_cuda(Tensor& y, const Tensor& x, const PoolGeom& g);
// Forward was the above: dx[h,w] (+)= sum over covering windows of dy / divisor.   dx: (P,H,W)  dy: (P,OH,OW)
void avg_pool_backward_cpu(GradBuf dx, const Tensor& dy, const PoolGeom& g);
void avg_pool_backward_cuda(GradBuf dx, const Tensor& dy, const PoolGeom& g);

// y = window max (NaN wins, first max in row-major order), argmax = its flat index h*W+w.
// x: (P,H,W)  y: (P,OH,OW)  argmax: (P,OH,OW) i64
void max_pool_forward_cpu(Tensor& y, Tensor& argmax, const Tensor& x, const PoolGeom& g);
void max_pool_forward_cuda(Tensor& y, Tensor& argmax, const Tensor& x, const PoolGeom& g);
// Forward was y[o] = x[argmax[o]]: dx[i] (+)= sum of dy[o] over outputs o with argmax[o] == i.
void max_pool_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& argmax, const PoolGeom& g);
void max_pool_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& argmax, const PoolGeom& g);

// y[p] = mean of plane p.   x: (P,HW)  y: (P)
void global_avg_pool_forward_cpu(Tensor& y, const Tensor& x, int64_t P, int64_t HW);
void global_avg_pool_forward_cuda(Tensor& y, const Tensor& x, int64_t P, int64_t HW);
// Forward was y[p] = mean(x[p, :]): dx[p, :] (+)= dy[p] / HW.
void global_avg_pool_backward_cpu(GradBuf dx, const Tensor& dy, int64_t P, int64_t HW);
void global_avg_pool_backward_cuda(GradBuf dx, const Tensor& dy, int64_t P, int64_t HW);

}  // namespace pw
