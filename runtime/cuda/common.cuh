// Shared by every .cu file of patchwork: error checks, the compute stream,
// launch geometry, deterministic reductions, bf16 helpers. CUDA-only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/check.h"
#include "runtime/cuda/runtime.h"

// Throws pw::Error naming the call, file:line and CUDA's message.
#define PW_CUDA_CHECK(call)                                                                  \
  do {                                                                                       \
    cudaError_t pw_err_ = (call);                                                            \
    if (pw_err_ != cudaSuccess)                                                              \
      ::pw::detail::fail(__FILE__, __LINE__, "CUDA call ", #call, " failed: ",               \
                         cudaGetErrorName(pw_err_), ": ", cudaGetErrorString(pw_err_));      \
  } while (0)

// After every kernel launch: reports a bad launch configuration (or an earlier
// asynchronous fault) where it happened.
#define PW_CUDA_LAUNCH_CHECK()                                                               \
  do {                                                                                       \
    cudaError_t pw_err_ = cudaGetLastError();                                                \
    if (pw_err_ != cudaSuccess)                                                              \
      ::pw::detail::fail(__FILE__, __LINE__, "CUDA kernel launch failed: ",                  \
                         cudaGetErrorName(pw_err_), ": ", cudaGetErrorString(pw_err_));      \
  } while (0)

namespace pw {
struct bf16_t;  // kernels/attention/flash_attention_cuda.h
}

namespace pw::cuda {

// The compute stream every launcher and copy runs on.
inline cudaStream_t stream() { return static_cast<cudaStream_t>(compute_stream()); }

constexpr int kBlock = 256;  // threads per block of the elementwise kernels

// Blocks for a grid-stride loop over n elements with kBlock threads: enough to
// fill an H200 several times over, never more than the work needs.
inline unsigned grid_for(int64_t n, int threads = kBlock) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  const int64_t cap = 132 * 32;  // SMs * blocks resident per SM, roughly
  return (unsigned)(b < cap ? b : cap);
}

// for (i = first; i < n; i += stride) over the whole grid, 64-bit indices.
#define PW_GRID_STRIDE(i, n)                                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);         \
       i += (int64_t)blockDim.x * gridDim.x)

// Sum over the 32 lanes of a warp by a fixed butterfly: every lane gets the
// same bits, and two runs give the same bits.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024, 1-D),
// returned to every thread. Fixed order: each warp folds by warp_sum, then warp
// 0 folds the per-warp sums. `shared` holds at least 32 T. Contains
// __syncthreads(): every thread of the block must call it.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read by a previous block_sum
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {  // only warp 0 reads: the others may already be past the last barrier
    T t = lane < nwarps ? shared[lane] : T(0);
    t = warp_sum(t);
    if (lane == 0) shared[0] = t;
  }
  __syncthreads();
  return shared[0];
}

// Max of v over the block, same contract and fixed order as block_sum.
template <class T>
__device__ __forceinline__ T block_max(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const T u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T t = lane < nwarps ? shared[lane] : shared[0];
    for (int o = 16; o > 0; o >>= 1) {
      const T u = __shfl_xor_sync(0xffffffffu, t, o);
      t = u > t ? u : t;
    }
    if (lane == 0) shared[0] = t;
  }
  __syncthreads();
  return shared[0];
}

// a += v for gradient accumulation, without letting nvcc fuse v's last multiply
// into an fma with a: a second backward must add exactly what the first added.
__device__ __forceinline__ void acc_add(float& a, float v) { a = __fadd_rn(a, v); }
__device__ __forceinline__ void acc_add(double& a, double v) { a = __dadd_rn(a, v); }

// bf16 <-> float (round to nearest even), for mixed-precision storage.
__device__ __forceinline__ float bf16_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ __nv_bfloat16 float_to_bf16(float v) { return __float2bfloat16_rn(v); }
// The same for kernels templated on their storage type T (float or __nv_bfloat16).
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return bf16_to_float(v); }
template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return float_to_bf16(v);
}

// The type a kernel computes on for a host-side storage type T: T itself, except the
// host's bf16 word (bf16_t, kernels/attention/flash_attention_cuda.h), which is __nv_bfloat16.
template <class T>
struct DeviceType {
  using type = T;
};
template <>
struct DeviceType<bf16_t> {
  using type = __nv_bfloat16;
};

}  // namespace pw::cuda
