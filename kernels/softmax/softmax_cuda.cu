// softmax / log_softmax on CUDA (see softmax_kernels.h). The element math is
// softmax_math.h's, as on the CPU (vexp: the same exp_fast for float).
#include "autograd/dispatch.h"
#include "kernels/softmax/softmax_kernels.h"
#include "kernels/softmax/softmax_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using cuda::acc_add;

constexpr int kRowBlock = 256;

using cuda::block_max;

// d (+)= v: accumulate adds (without an fma, see acc_add), else writes (GradBuf contract).
template <class T> __device__ __forceinline__ void put(T& d, T v, bool accumulate) {
  if (accumulate) acc_add(d, v);
  else d = v;
}

// grid: (O), block: kRowBlock.   x, y: (O, R)
template <bool Log, class T>
__global__ void softmax_rows_fwd(T* y, const T* __restrict__ x, int64_t R) {
  __shared__ T smax[32];
  __shared__ double ssum[32];
  const T* xr = x + (int64_t)blockIdx.x * R;
  T* yr = y + (int64_t)blockIdx.x * R;
  T m = xr[0];
  for (int64_t j = threadIdx.x; j < R; j += blockDim.x) m = xr[j] > m ? xr[j] : m;
  m = block_max(m, smax);
  double s = 0;
  for (int64_t j = threadIdx.x; j < R; j += blockDim.x) s += (double)math::vexp(xr[j] - m);
  s = cuda::block_sum(s, ssum);
  if constexpr (Log) {
    const T lse = m + (T)log(s);
    for (int64_t j = threadIdx.x; j < R; j += blockDim.x) yr[j] = xr[j] - lse;
  } else {
    const T inv = (T)(1.0 / s);
    for (int64_t j = threadIdx.x; j < R; j += blockDim.x) yr[j] = math::vexp(xr[j] - m) * inv;
  }
}

// grid: (O), block: kRowBlock.   dx, y, dy: (O, R)
template <bool Log, class T>
__global__ void softmax_rows_bwd(T* dx, const T* __restrict__ y, const T* __restrict__ dy, int64_t R,
                                 bool accumulate) {
  __shared__ double ssum[32];
  const int64_t base = (int64_t)blockIdx.x * R;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < R; j += blockDim.x)
    acc += Log ? (double)dy[base + j] : (double)dy[base + j] * (double)y[base + j];
  const T a = (T)cuda::block_sum(acc, ssum);
  for (int64_t j = threadIdx.x; j < R; j += blockDim.x) {
    const int64_t k = base + j;
    if constexpr (Log) put(dx[k], math::log_softmax_bwd(y[k], dy[k], a), accumulate);
    else put(dx[k], math::softmax_bwd(y[k], dy[k], a), accumulate);
  }
}

// One thread per column t = (o, i).   x, y: (O, R, I)
template <bool Log, class T>
__global__ void softmax_cols_fwd(T* y, const T* __restrict__ x, int64_t O, int64_t R, int64_t I) {
  PW_GRID_STRIDE(t, O * I) {
    const int64_t o = t / I, i = t - o * I, b = o * R * I + i;
    T m = x[b];
    for (int64_t j = 1; j < R; ++j) m = x[b + j * I] > m ? x[b + j * I] : m;
    double s = 0;
    for (int64_t j = 0; j < R; ++j) s += (double)math::vexp(x[b + j * I] - m);
    if constexpr (Log) {
      const T lse = m + (T)log(s);
      for (int64_t j = 0; j < R; ++j) y[b + j * I] = x[b + j * I] - lse;
    } else {
      const T inv = (T)(1.0 / s);
      for (int64_t j = 0; j < R; ++j) y[b + j * I] = math::vexp(x[b + j * I] - m) * inv;
    }
  }
}

template <bool Log, class T>
__global__ void softmax_cols_bwd(T* dx, const T* __restrict__ y, const T* __restrict__ dy, int64_t O, int64_t R,
                                 int64_t I, bool accumulate) {
  PW_GRID_STRIDE(t, O * I) {
    const int64_t o = t / I, i = t - o * I, b = o * R * I + i;
    double acc = 0;
    for (int64_t j = 0; j < R; ++j) {
      const int64_t k = b + j * I;
      acc += Log ? (double)dy[k] : (double)dy[k] * (double)y[k];
    }
    const T a = (T)acc;
    for (int64_t j = 0; j < R; ++j) {
      const int64_t k = b + j * I;
      if constexpr (Log) put(dx[k], math::log_softmax_bwd(y[k], dy[k], a), accumulate);
      else put(dx[k], math::softmax_bwd(y[k], dy[k], a), accumulate);
    }
  }
}

template <bool Log>
void forward(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I) {
  if (O * R * I == 0) return;
  const char* op = Log ? "log_softmax" : "softmax";
  PW_CHECK(O < (int64_t(1) << 31), op, ": ", O, " rows exceed the CUDA grid");
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (I == 1)
      softmax_rows_fwd<Log, T><<<(unsigned)O, kRowBlock, 0, cuda::stream()>>>(y.data<T>(), x.data<T>(), R);
    else
      softmax_cols_fwd<Log, T><<<cuda::grid_for(O * I), cuda::kBlock, 0, cuda::stream()>>>(y.data<T>(), x.data<T>(),
                                                                                           O, R, I);
  });
  PW_CUDA_LAUNCH_CHECK();
}
template <bool Log>
void backward(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I) {
  if (O * R * I == 0) return;
  const char* op = Log ? "log_softmax" : "softmax";
  PW_CHECK(O < (int64_t(1) << 31), op, ": ", O, " rows exceed the CUDA grid");
  dispatch_float(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (I == 1)
      softmax_rows_bwd<Log, T><<<(unsigned)O, kRowBlock, 0, cuda::stream()>>>(dx.data<T>(), y.data<T>(), dy.data<T>(),
                                                                              R, dx.accumulate);
    else
      softmax_cols_bwd<Log, T><<<cuda::grid_for(O * I), cuda::kBlock, 0, cuda::stream()>>>(
          dx.data<T>(), y.data<T>(), dy.data<T>(), O, R, I, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void softmax_forward_cuda(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I) {
  forward<false>(y, x, O, R, I);
}
void log_softmax_forward_cuda(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I) {
  forward<true>(y, x, O, R, I);
}
void softmax_backward_cuda(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I) {
  backward<false>(dx, y, dy, O, R, I);
}
void log_softmax_backward_cuda(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I) {
  backward<true>(dx, y, dy, O, R, I);
}

}  // namespace pw
