// dropout and drop_path on CUDA (see dropout_kernels.h).
#include "autograd/dispatch.h"
#include "kernels/dropout/dropout_kernels.h"
#include "kernels/dropout/dropout_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using cuda::acc_add;

// One thread per Philox counter j: elements 4j .. 4j+3 (fewer for the last).   y, v: (n)
template <bool Accumulate, class T>
__global__ void dropout_kernel(T* y, const T* __restrict__ v, int64_t n, uint64_t seed, uint64_t base, float p,
                               T scale) {
  PW_GRID_STRIDE(j, (n + 3) / 4) {
    float u[4];
    math::philox_uniform4(seed, base + (uint64_t)j, u);
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 4 * j + k;
      if (i >= n) break;
      const T r = math::dropout_apply(v[i], math::dropout_keep(u[k], p), scale);
      if constexpr (Accumulate) acc_add(y[i], r);
      else y[i] = r;
    }
  }
}

template <bool Accumulate, class T>
__global__ void drop_path_kernel(T* y, const T* __restrict__ v, const T* factor, int64_t B, int64_t M) {
  PW_GRID_STRIDE(k, B * M) {
    const T r = v[k] * factor[k / M];
    if constexpr (Accumulate) acc_add(y[k], r);
    else y[k] = r;
  }
}

// y (Accumulate: +=, else =) dropout_apply(v, ...).   y, v: (n)
template <bool Accumulate, class T>
void dropout_apply_cuda(T* y, const T* v, int64_t n, uint64_t seed, uint64_t base, float p, T scale) {
  if (n == 0) return;
  dropout_kernel<Accumulate, T><<<cuda::grid_for((n + 3) / 4), cuda::kBlock, 0, cuda::stream()>>>(y, v, n, seed, base,
                                                                                                   p, scale);
  PW_CUDA_LAUNCH_CHECK();
}
// y (Accumulate: +=, else =) v * factor per sample.   y, v: (B, M)  factor: (B)
template <bool Accumulate, class T>
void drop_path_apply_cuda(T* y, const T* v, const T* factor, int64_t B, int64_t M) {
  if (B * M == 0) return;
  drop_path_kernel<Accumulate, T><<<cuda::grid_for(B * M), cuda::kBlock, 0, cuda::stream()>>>(y, v, factor, B, M);
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void dropout_forward_cuda(Tensor& y, const Tensor& x, uint64_t seed, uint64_t base, double p) {
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    dropout_apply_cuda<false>(y.data<T>(), x.data<T>(), x.numel(), seed, base, (float)p, (T)math::dropout_scale(p));
  });
}
void dropout_backward_cuda(GradBuf dx, const Tensor& dy, uint64_t seed, uint64_t base, double p) {
  dispatch_float(dy.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T scale = (T)math::dropout_scale(p);
    if (dx.accumulate) dropout_apply_cuda<true>(dx.data<T>(), dy.data<T>(), dy.numel(), seed, base, (float)p, scale);
    else dropout_apply_cuda<false>(dx.data<T>(), dy.data<T>(), dy.numel(), seed, base, (float)p, scale);
  });
}

void drop_path_forward_cuda(Tensor& y, const Tensor& x, const Tensor& factor) {
  dispatch_float(x.dtype(), "drop_path", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = factor.numel(), M = B ? x.numel() / B : 0;
    drop_path_apply_cuda<false>(y.data<T>(), x.data<T>(), factor.data<T>(), B, M);
  });
}
void drop_path_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& factor) {
  dispatch_float(dy.dtype(), "drop_path", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = factor.numel(), M = B ? dy.numel() / B : 0;
    if (dx.accumulate) drop_path_apply_cuda<true>(dx.data<T>(), dy.data<T>(), factor.data<T>(), B, M);
    else drop_path_apply_cuda<false>(dx.data<T>(), dy.data<T>(), factor.data<T>(), B, M);
  });
}

}  // namespace pw
