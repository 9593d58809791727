// dropout and drop_path on CUDA (see dropout_cuda.h).
#include "runtime/cuda/common.cuh"
#include "kernels/dropout/dropout_cuda.h"
#include "kernels/dropout/dropout_math.h"

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

}  // namespace

template <bool Accumulate, class T>
void dropout_apply_cuda(T* y, const T* v, int64_t n, uint64_t seed, uint64_t base, float p, T scale) {
  if (n == 0) return;
  dropout_kernel<Accumulate, T><<<cuda::grid_for((n + 3) / 4), cuda::kBlock, 0, cuda::stream()>>>(y, v, n, seed, base,
                                                                                                   p, scale);
  PW_CUDA_LAUNCH_CHECK();
}
template <bool Accumulate, class T>
void drop_path_apply_cuda(T* y, const T* v, const T* factor, int64_t B, int64_t M) {
  if (B * M == 0) return;
  drop_path_kernel<Accumulate, T><<<cuda::grid_for(B * M), cuda::kBlock, 0, cuda::stream()>>>(y, v, factor, B, M);
  PW_CUDA_LAUNCH_CHECK();
}

#define PW_INST(A, T)                                                                              \
  template void dropout_apply_cuda<A, T>(T*, const T*, int64_t, uint64_t, uint64_t, float, T);      \
  template void drop_path_apply_cuda<A, T>(T*, const T*, const T*, int64_t, int64_t);
PW_INST(false, float)
PW_INST(true, float)
PW_INST(false, double)
PW_INST(true, double)
#undef PW_INST

}  // namespace pw
