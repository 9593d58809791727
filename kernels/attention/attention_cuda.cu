#include <cuda_bf16.h>

#include "kernels/attention/attention_cuda.h"
#include "kernels/attention/flash_attention_cuda.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using cuda::from_float;
using cuda::to_float;

// Offset in the (S,B,NH,N,HD) layout of element i of the (B,N,S,NH,HD) layout. The fast
// index d is shared, so neighbouring threads touch neighbouring elements on both sides.
__device__ __forceinline__ int64_t split_offset(int64_t i, int64_t B, int64_t N, int64_t S, int64_t NH,
                                                int64_t HD) {
  const int64_t d = i % HD;
  int64_t r = i / HD;
  const int64_t h = r % NH;
  r /= NH;
  const int64_t s = r % S;
  r /= S;
  const int64_t n = r % N;
  const int64_t b = r / N;
  return (((s * B + b) * NH + h) * N + n) * HD + d;
}

// dst (S,B,NH,N,HD)  src (B,N,S,NH,HD); one thread per element of src.
template <class D>
__global__ void split_heads_kernel(D* __restrict__ dst, const float* __restrict__ src, int64_t B, int64_t N,
                                   int64_t S, int64_t NH, int64_t HD) {
  PW_GRID_STRIDE(i, B * N * S * NH * HD) { dst[split_offset(i, B, N, S, NH, HD)] = from_float<D>(src[i]); }
}

// dst (B,N,S,NH,HD)  src (S,B,NH,N,HD); one thread per element of dst.
template <class D>
__global__ void merge_heads_kernel(float* __restrict__ dst, const D* __restrict__ src, int64_t B, int64_t N,
                                   int64_t S, int64_t NH, int64_t HD, bool accumulate) {
  PW_GRID_STRIDE(i, B * N * S * NH * HD) {
    const float v = to_float(src[split_offset(i, B, N, S, NH, HD)]);
    dst[i] = accumulate ? dst[i] + v : v;
  }
}

}  // namespace

template <class T>
void attention_split_heads_cuda(T* dst, const float* src, int64_t B, int64_t N, int64_t S, int64_t NH, int64_t HD) {
  using D = typename cuda::DeviceType<T>::type;
  const int64_t n = B * N * S * NH * HD;
  if (n == 0) return;
  split_heads_kernel<D><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(reinterpret_cast<D*>(dst), src, B,
                                                                                 N, S, NH, HD);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void attention_merge_heads_cuda(float* dst, const T* src, int64_t B, int64_t N, int64_t S, int64_t NH, int64_t HD,
                                bool accumulate) {
  using D = typename cuda::DeviceType<T>::type;
  const int64_t n = B * N * S * NH * HD;
  if (n == 0) return;
  merge_heads_kernel<D><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
      dst, reinterpret_cast<const D*>(src), B, N, S, NH, HD, accumulate);
  PW_CUDA_LAUNCH_CHECK();
}

template void attention_split_heads_cuda<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void attention_split_heads_cuda<bf16_t>(bf16_t*, const float*, int64_t, int64_t, int64_t, int64_t,
                                                 int64_t);
template void attention_merge_heads_cuda<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                                bool);
template void attention_merge_heads_cuda<bf16_t>(float*, const bf16_t*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                                 bool);

}  // namespace pw
