// Reductions on CUDA. Rows (innermost group reduced): one block per output,
// each thread sums a fixed strided subset, then a fixed-order block_sum. Columns
// (innermost group kept): 32 adjacent outputs per block (coalesced reads), 8
// thread rows each summing a fixed subset of the reduced index, folded in order.
#include "runtime/cuda/common.cuh"
#include "autograd/dispatch.h"
#include "kernels/reduce/reduce_kernels.h"
#include "kernels/reduce/reduce_math.h"

namespace pw {

namespace {

// Offset in x of reduction index r (row-major over the reduced groups).
__device__ __forceinline__ int64_t red_offset(const ReduceDesc& d, int64_t r) {
  if (d.n_red == 1) return r * d.red_stride[0];
  int64_t off = 0;
  for (int j = d.n_red - 1; j >= 0; --j) {
    const int64_t q = r / d.red_size[j];
    off += (r - q * d.red_size[j]) * d.red_stride[j];
    r = q;
  }
  return off;
}
// Offset in x of the first element of output o (row-major over the kept groups).
__device__ __forceinline__ int64_t keep_offset(const ReduceDesc& d, int64_t o) {
  int64_t off = 0;
  for (int j = d.n_keep - 1; j >= 0; --j) {
    const int64_t q = o / d.keep_size[j];
    off += (o - q * d.keep_size[j]) * d.keep_stride[j];
    o = q;
  }
  return off;
}

template <class T>
__device__ __forceinline__ double elem(T v, const double* center, int64_t o) {
  if (center == nullptr) return (double)v;
  const double c = (double)v - center[o];
  return c * c;
}
template <class Out>
__device__ __forceinline__ void store(Out* y, int64_t o, double acc, double scale, bool accumulate) {
  const Out v = (Out)(acc * scale);
  if (accumulate) y[o] += v;
  else y[o] = v;
}

// grid: (n_out), block: power of two in [32, 256]
template <class T, class Out>
__global__ void reduce_rows_kernel(Out* y, const T* __restrict__ x, const double* center, ReduceDesc d, double scale,
                                   bool accumulate) {
  __shared__ double shared[32];
  const int64_t o = blockIdx.x;
  const T* base = x + keep_offset(d, o);
  double acc = 0;
  for (int64_t r = threadIdx.x; r < d.n_redel; r += blockDim.x) acc += elem(base[red_offset(d, r)], center, o);
  acc = cuda::block_sum(acc, shared);
  if (threadIdx.x == 0) store(y, o, acc, scale, accumulate);
}

constexpr int kColX = 32, kColY = 8;
// grid: (ceil(n_out / 32)), block: (32, 8)
template <class T, class Out>
__global__ void reduce_cols_kernel(Out* y, const T* __restrict__ x, const double* center, ReduceDesc d, double scale,
                                   bool accumulate) {
  __shared__ double part[kColY][kColX];
  const int64_t o = (int64_t)blockIdx.x * kColX + threadIdx.x;
  double acc = 0;
  if (o < d.n_out) {
    const T* base = x + keep_offset(d, o);
    for (int64_t r = threadIdx.y; r < d.n_redel; r += kColY) acc += elem(base[red_offset(d, r)], center, o);
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && o < d.n_out) {
    double s = 0;
    for (int j = 0; j < kColY; ++j) s += part[j][threadIdx.x];
    store(y, o, s, scale, accumulate);
  }
}

// One thread per element k of x.  acc: add into dx, else write it (GradBuf contract).
template <class T>
__global__ void reduce_backward_kernel(T* dx, const T* __restrict__ dy, const T* __restrict__ x,
                                       const double* center, ReduceDesc d, T scale, bool acc) {
  PW_GRID_STRIDE(k, d.numel) {
    int64_t o = 0, r = k;
    for (int j = d.n_all - 1; j >= 0; --j) {
      const int64_t q = r / d.all_size[j];
      o += (r - q * d.all_size[j]) * d.all_ostride[j];
      r = q;
    }
    const T g = center == nullptr ? scale * dy[o] : math::var_bwd<T>(x[k], (T)center[o], dy[o], scale);
    dx[k] = acc ? dx[k] + g : g;
  }
}

// The better of two (value, index) candidates: max_takes, ties (and NaN
// against NaN) to the smaller index; index -1 is an empty candidate.
template <class T>
__device__ __forceinline__ bool second_wins(T v1, int64_t i1, T v2, int64_t i2) {
  if (i2 < 0) return false;
  if (i1 < 0) return true;
  if (math::max_takes(v2, v1)) return true;
  const bool same = v2 == v1 || (v2 != v2 && v1 != v1);
  return same && i2 < i1;
}

// grid: (O), block: 256.   x: (O,R), y, idx: (O)
template <class T>
__global__ void max_rows_kernel(T* y, int64_t* idx, const T* __restrict__ x, int64_t R) {
  __shared__ T bv[256];
  __shared__ int64_t bi[256];
  const T* row = x + (int64_t)blockIdx.x * R;
  T best = T(0);
  int64_t at = -1;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x)
    if (at < 0 || math::max_takes(row[r], best)) { best = row[r]; at = r; }
  bv[threadIdx.x] = best;
  bi[threadIdx.x] = at;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && second_wins(bv[threadIdx.x], bi[threadIdx.x], bv[threadIdx.x + s], bi[threadIdx.x + s])) {
      bv[threadIdx.x] = bv[threadIdx.x + s];
      bi[threadIdx.x] = bi[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    y[blockIdx.x] = bv[0];
    idx[blockIdx.x] = bi[0];
  }
}
// One thread per (o, i), walking r in order.   x: (O,R,I), y, idx: (O,I)
template <class T>
__global__ void max_cols_kernel(T* y, int64_t* idx, const T* __restrict__ x, int64_t O, int64_t R, int64_t I) {
  PW_GRID_STRIDE(t, O * I) {
    const int64_t o = t / I, i = t - o * I;
    const T* col = x + o * R * I + i;
    T best = col[0];
    int64_t at = 0;
    for (int64_t r = 1; r < R; ++r)
      if (math::max_takes(col[r * I], best)) { best = col[r * I]; at = r; }
    y[t] = best;
    idx[t] = at;
  }
}
template <class T>
__global__ void max_backward_kernel(T* dx, const T* __restrict__ dy, const int64_t* __restrict__ idx, int64_t O,
                                    int64_t R, int64_t I) {
  PW_GRID_STRIDE(t, O * I) {
    const int64_t o = t / I, i = t - o * I;
    dx[(o * R + idx[t]) * I + i] += dy[t];
  }
}
// grid: 1, block: 256
template <class T>
__global__ void count_equal_kernel(int64_t* ties, const T* __restrict__ x, const T* best, int64_t n) {
  __shared__ long long shared[32];
  const T b = best[0];
  long long c = 0;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) c += x[k] == b;
  c = cuda::block_sum(c, shared);
  if (threadIdx.x == 0) ties[0] = c > 0 ? (int64_t)c : 1;  // NOTE: a NaN max equals nothing: no gradient
}
// acc: add into dx, else write every element (GradBuf contract).
template <class T>
__global__ void amax_backward_kernel(T* dx, const T* __restrict__ x, const T* best, const int64_t* ties, const T* dy,
                                     int64_t n, bool acc) {
  const T b = best[0], share = dy[0] / (T)ties[0];
  PW_GRID_STRIDE(k, n) {
    if (acc) {
      if (x[k] == b) dx[k] += share;
    } else {
      dx[k] = x[k] == b ? share : T(0);
    }
  }
}

}  // namespace

template <class T, class Out>
void reduce_sum_cuda(Out* y, const T* x, const double* center, const ReduceDesc& d, double scale, bool accumulate) {
  if (d.n_out == 0) return;
  PW_CHECK(d.n_out < (int64_t(1) << 31) * kColX, "reduce_sum_cuda: ", d.n_out, " outputs are too many");
  if (d.inner_reduced) {
    int threads = 32;
    while (threads < 256 && threads < d.n_redel) threads *= 2;
    reduce_rows_kernel<T, Out><<<(unsigned)d.n_out, threads, 0, cuda::stream()>>>(y, x, center, d, scale, accumulate);
  } else {
    const unsigned blocks = (unsigned)((d.n_out + kColX - 1) / kColX);
    reduce_cols_kernel<T, Out><<<blocks, dim3(kColX, kColY), 0, cuda::stream()>>>(y, x, center, d, scale, accumulate);
  }
  PW_CUDA_LAUNCH_CHECK();
}

namespace {

ReduceDesc desc_of(const ReduceSpec& r) { return make_reduce_desc(r.op, r.x_shape, r.reduced); }

}  // namespace

void sum_forward_cuda(Tensor& y, const Tensor& x, const ReduceSpec& r, double scale) {
  const ReduceDesc d = desc_of(r);
  dispatch_float(x.dtype(), r.op, [&](auto tag) {
    using T = decltype(tag);
    reduce_sum_cuda<T, T>(y.data<T>(), x.data<T>(), nullptr, d, scale, false);
  });
}

void sum_backward_cuda(GradBuf dx, const Tensor& dy, const ReduceSpec& r, double scale) {
  const ReduceDesc d = desc_of(r);
  if (d.numel == 0) return;
  dispatch_float(dy.dtype(), r.op, [&](auto tag) {
    using T = decltype(tag);
    reduce_backward_kernel<T><<<cuda::grid_for(d.numel), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), nullptr, nullptr, d, (T)scale, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void var_forward_cuda(Tensor& y, Tensor& mean, const Tensor& x, const ReduceSpec& r, double denom) {
  const ReduceDesc d = desc_of(r);
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    // Two passes, as on the cpu: the mean (in double), then squared deviations.
    reduce_sum_cuda<T, double>(mean.data<double>(), x.data<T>(), nullptr, d, 1.0 / (double)r.plan.n_red, false);
    reduce_sum_cuda<T, T>(y.data<T>(), x.data<T>(), mean.data<double>(), d, 1.0 / denom, false);
  });
}

void var_backward_cuda(GradBuf dx, const Tensor& x, const Tensor& mean, const Tensor& dy, const ReduceSpec& r,
                       double scale) {
  const ReduceDesc d = desc_of(r);
  if (d.numel == 0) return;
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    reduce_backward_kernel<T><<<cuda::grid_for(d.numel), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), x.data<T>(), mean.data<double>(), d, (T)scale, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

namespace {

// Largest value along R and its first index.   x: (O,R,I), y, idx: (O,I)
template <class T> void max_dim_cuda(T* y, int64_t* idx, const T* x, int64_t O, int64_t R, int64_t I) {
  if (O * I == 0) return;
  if (I == 1) max_rows_kernel<T><<<(unsigned)O, 256, 0, cuda::stream()>>>(y, idx, x, R);
  else max_cols_kernel<T><<<cuda::grid_for(O * I), cuda::kBlock, 0, cuda::stream()>>>(y, idx, x, O, R, I);
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void max_forward_cuda(Tensor& values, Tensor& indices, const Tensor& x, detail::DimView v) {
  dispatch_float(x.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    max_dim_cuda<T>(values.data<T>(), indices.data<int64_t>(), x.data<T>(), v.O, v.R, v.I);
  });
}

void max_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& indices, detail::DimView v) {
  dx.zero_if_fresh();  // a scatter: only the argmax elements get a gradient
  if (v.O * v.I == 0) return;
  dispatch_float(dy.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    max_backward_kernel<T><<<cuda::grid_for(v.O * v.I), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), indices.data<int64_t>(), v.O, v.R, v.I);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void amax_forward_cuda(Tensor& y, Tensor& ties, const Tensor& x) {
  const int64_t n = x.numel();
  Tensor idx = empty({}, DType::I64, Device::CUDA);  // max_dim_cuda's index, unused
  dispatch_float(x.dtype(), "amax", [&](auto tag) {
    using T = decltype(tag);
    max_dim_cuda<T>(y.data<T>(), idx.data<int64_t>(), x.data<T>(), 1, n, 1);
    count_equal_kernel<T><<<1, 256, 0, cuda::stream()>>>(ties.data<int64_t>(), x.data<T>(), y.data<T>(), n);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void amax_backward_cuda(GradBuf dx, const Tensor& x, const Tensor& y, const Tensor& ties, const Tensor& dy) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "amax", [&](auto tag) {
    using T = decltype(tag);
    amax_backward_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), x.data<T>(), y.data<T>(), ties.data<int64_t>(), dy.data<T>(), n, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

template void reduce_sum_cuda<float, float>(float*, const float*, const double*, const ReduceDesc&, double, bool);
template void reduce_sum_cuda<float, double>(double*, const float*, const double*, const ReduceDesc&, double, bool);
template void reduce_sum_cuda<double, double>(double*, const double*, const double*, const ReduceDesc&, double, bool);

}  // namespace pw
