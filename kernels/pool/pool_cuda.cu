// CUDA pooling kernels and their tensor-level launchers (pool_kernels.h). Window
// rules are pool_math.h's, shared with the CPU. Every backward gathers: one thread
// per input element sums the outputs whose windows cover it (fixed order) and
// writes or adds once (GradBuf): no atomics, the same bits every run.
#include <math_constants.h>

#include "autograd/dispatch.h"
#include "kernels/pool/pool_kernels.h"
#include "kernels/pool/pool_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// Outputs along one axis whose (unclipped) window [o*s - p, o*s - p + k) covers input
// index i: [first, last). The caller re-checks with pool_window (ceil-mode clipping).
__device__ inline void cover(int64_t i, int64_t k, int64_t s, int64_t p, int64_t n_out, int64_t& first,
                             int64_t& last) {
  const int64_t hi = i + p;  // o*s <= i + p
  const int64_t lo = i + p - k;  // o*s > i + p - k
  first = lo < 0 ? 0 : lo / s + 1;
  last = hi / s + 1;
  if (last > n_out) last = n_out;
}

template <class T>
__global__ void avg_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, PoolDims d, bool cip) {
  PW_GRID_STRIDE(t, d.P * d.OH * d.OW) {
    const int64_t ow = t % d.OW, oh = (t / d.OW) % d.OH, p = t / (d.OW * d.OH);
    const math::PoolWindow wh = math::pool_window(oh, d.kH, d.sH, d.padH, d.H);
    const math::PoolWindow ww = math::pool_window(ow, d.kW, d.sW, d.padW, d.W);
    const T* xp = x + p * d.H * d.W;
    T sum = 0;
    for (int64_t h = wh.lo; h < wh.hi; ++h)
      for (int64_t w = ww.lo; w < ww.hi; ++w) sum += xp[h * d.W + w];
    y[t] = sum / T(math::avg_pool_divisor(wh, ww, cip));
  }
}
template <class T>
__global__ void avg_bwd_kernel(T* __restrict__ dx, const T* __restrict__ dy, PoolDims d, bool cip, bool accumulate) {
  PW_GRID_STRIDE(t, d.P * d.H * d.W) {
    const int64_t w = t % d.W, h = (t / d.W) % d.H, p = t / (d.W * d.H);
    int64_t oh0, oh1, ow0, ow1;
    cover(h, d.kH, d.sH, d.padH, d.OH, oh0, oh1);
    cover(w, d.kW, d.sW, d.padW, d.OW, ow0, ow1);
    const T* dyp = dy + p * d.OH * d.OW;
    T acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const math::PoolWindow wh = math::pool_window(oh, d.kH, d.sH, d.padH, d.H);
      if (h < wh.lo || h >= wh.hi) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const math::PoolWindow ww = math::pool_window(ow, d.kW, d.sW, d.padW, d.W);
        if (w < ww.lo || w >= ww.hi) continue;
        acc += dyp[oh * d.OW + ow] / T(math::avg_pool_divisor(wh, ww, cip));
      }
    }
    dx[t] = accumulate ? dx[t] + acc : acc;
  }
}

template <class T>
__global__ void max_fwd_kernel(T* __restrict__ y, int64_t* __restrict__ argmax, const T* __restrict__ x, PoolDims d) {
  PW_GRID_STRIDE(t, d.P * d.OH * d.OW) {
    const int64_t ow = t % d.OW, oh = (t / d.OW) % d.OH, p = t / (d.OW * d.OH);
    const math::PoolWindow wh = math::pool_window(oh, d.kH, d.sH, d.padH, d.H);
    const math::PoolWindow ww = math::pool_window(ow, d.kW, d.sW, d.padW, d.W);
    const T* xp = x + p * d.H * d.W;
    T best = -T(CUDART_INF);
    int64_t at = wh.lo * d.W + ww.lo;
    for (int64_t h = wh.lo; h < wh.hi; ++h)
      for (int64_t w = ww.lo; w < ww.hi; ++w) {
        const T v = xp[h * d.W + w];
        if (math::max_pool_takes(v, best)) best = v, at = h * d.W + w;
      }
    y[t] = best;
    argmax[t] = at;
  }
}
template <class T>
__global__ void max_bwd_kernel(T* __restrict__ dx, const T* __restrict__ dy, const int64_t* __restrict__ argmax,
                               PoolDims d, bool accumulate) {
  PW_GRID_STRIDE(t, d.P * d.H * d.W) {
    const int64_t w = t % d.W, h = (t / d.W) % d.H, p = t / (d.W * d.H), i = h * d.W + w;
    int64_t oh0, oh1, ow0, ow1;
    cover(h, d.kH, d.sH, d.padH, d.OH, oh0, oh1);
    cover(w, d.kW, d.sW, d.padW, d.OW, ow0, ow1);
    const int64_t base = p * d.OH * d.OW;
    T acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t o = base + oh * d.OW + ow;
        if (argmax[o] == i) acc += dy[o];
      }
    dx[t] = accumulate ? dx[t] + acc : acc;
  }
}

// One block per plane: fixed-order block_sum (in double for float too).
template <class T>
__global__ void gap_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t HW) {
  __shared__ double sh[32];
  const T* xp = x + (int64_t)blockIdx.x * HW;
  double acc = 0;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) acc += (double)xp[i];
  acc = cuda::block_sum(acc, sh);
  if (threadIdx.x == 0) y[blockIdx.x] = (T)(acc / (double)HW);
}
template <class T>
__global__ void gap_bwd_kernel(T* __restrict__ dx, const T* __restrict__ dy, int64_t P, int64_t HW, bool accumulate) {
  PW_GRID_STRIDE(t, P * HW) {
    const T d = dy[t / HW] / T(HW);
    dx[t] = accumulate ? dx[t] + d : d;
  }
}

}  // namespace

void avg_pool_forward_cuda(Tensor& y, const Tensor& x, const PoolGeom& g) {
  const PoolDims d = g.dims();
  const int64_t n = d.P * d.OH * d.OW;
  if (n == 0) return;
  dispatch_float(x.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    avg_fwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y.data<T>(), x.data<T>(), d,
                                                                             g.count_include_pad);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void avg_pool_backward_cuda(GradBuf dx, const Tensor& dy, const PoolGeom& g) {
  const PoolDims d = g.dims();
  const int64_t n = d.P * d.H * d.W;
  if (n == 0) return;
  dispatch_float(dy.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    avg_bwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dx.data<T>(), dy.data<T>(), d,
                                                                             g.count_include_pad, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void max_pool_forward_cuda(Tensor& y, Tensor& argmax, const Tensor& x, const PoolGeom& g) {
  const PoolDims d = g.dims();
  const int64_t n = d.P * d.OH * d.OW;
  if (n == 0) return;
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    max_fwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y.data<T>(), argmax.data<int64_t>(),
                                                                             x.data<T>(), d);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void max_pool_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& argmax, const PoolGeom& g) {
  const PoolDims d = g.dims();
  const int64_t n = d.P * d.H * d.W;
  if (n == 0) return;
  dispatch_float(dy.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    max_bwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), argmax.data<int64_t>(), d, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void global_avg_pool_forward_cuda(Tensor& y, const Tensor& x, int64_t P, int64_t HW) {
  if (P == 0) return;
  PW_CHECK(P <= 0x7fffffff, "global_avg_pool2d: ", P, " planes exceed the CUDA grid");
  dispatch_float(x.dtype(), "global_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    gap_fwd_kernel<T><<<(unsigned)P, cuda::kBlock, 0, cuda::stream()>>>(y.data<T>(), x.data<T>(), HW);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void global_avg_pool_backward_cuda(GradBuf dx, const Tensor& dy, int64_t P, int64_t HW) {
  if (P * HW == 0) return;
  dispatch_float(dy.dtype(), "global_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    gap_bwd_kernel<T><<<cuda::grid_for(P * HW), cuda::kBlock, 0, cuda::stream()>>>(dx.data<T>(), dy.data<T>(), P,
                                                                                  HW, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace pw
