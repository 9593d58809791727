// cross_entropy and cross_entropy_soft on CUDA: kernels and tensor-level launchers
// (declared in loss_kernels.h); element math from loss_math.h, as on the CPU.
// Backward kernels take `acc` flags: add into a gradient buffer, else write it
// (GradBuf contract).
#include "autograd/dispatch.h"
#include "kernels/loss/loss_kernels.h"
#include "kernels/loss/loss_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using cuda::acc_add;

constexpr int kRowBlock = 256;

using cuda::block_max;

// logsumexp of row xr (C values), the max subtracted; every thread gets it.
template <class T>
__device__ double row_lse(const T* xr, int64_t C, T* smax, double* ssum) {
  T m = xr[0];
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = xr[c] > m ? xr[c] : m;
  m = block_max(m, smax);
  double s = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += (double)math::vexp(xr[c] - m);
  return (double)m + log(cuda::block_sum(s, ssum));
}

// grid: (B), block: kRowBlock.   x: (B,C)  t, lse, rows: (B)
template <class T>
__global__ void ce_rows_kernel(double* lse, double* rows, const T* __restrict__ x, const int64_t* t, int64_t C,
                               double eps) {
  __shared__ T smax[32];
  __shared__ double ssum[32];
  const int64_t b = blockIdx.x;
  const T* xr = x + b * C;
  const double l = row_lse(xr, C, smax, ssum);
  double mean_x = 0;
  if (eps > 0) {
    double s = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += (double)xr[c];
    mean_x = cuda::block_sum(s, ssum) / (double)C;
  }
  if (threadIdx.x == 0) {
    lse[b] = l;
    rows[b] = math::ce_row_loss<double>(l, (double)xr[t[b]], mean_x, eps);
  }
}

// grid: (B), block: kRowBlock.   x, q: (B,C)  lse, sum_q, rows: (B)
template <class T>
__global__ void soft_ce_rows_kernel(double* lse, double* sum_q, double* rows, const T* __restrict__ x,
                                    const T* __restrict__ q, int64_t C) {
  __shared__ T smax[32];
  __shared__ double ssum[32];
  const int64_t b = blockIdx.x;
  const T* xr = x + b * C;
  const T* qr = q + b * C;
  const double l = row_lse(xr, C, smax, ssum);
  double sq = 0, sr = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    sq += (double)qr[c];
    sr += (double)qr[c] * (l - (double)xr[c]);  // not S lse - sum q x: no cancellation
  }
  sq = cuda::block_sum(sq, ssum);
  sr = cuda::block_sum(sr, ssum);
  if (threadIdx.x == 0) {
    lse[b] = l;
    sum_q[b] = sq;
    rows[b] = sr;
  }
}

// y[0] = sum_b rows[b] / B, one block, fixed order.   NOTE: B = 0 gives NaN, as torch's mean.
template <class T>
__global__ void mean_rows_kernel(T* y, const double* rows, int64_t B) {
  __shared__ double ssum[32];
  double s = 0;
  for (int64_t b = threadIdx.x; b < B; b += blockDim.x) s += rows[b];
  s = cuda::block_sum(s, ssum);
  if (threadIdx.x == 0) y[0] = (T)(s / (double)B);
}

// acc: add into dx, else write it.
template <class T>
__global__ void ce_bwd_kernel(T* dx, const T* dy, const T* __restrict__ x, const int64_t* t, const double* lse,
                              int64_t B, int64_t C, double eps, bool acc) {
  const T scale = dy[0] / (T)B, e_c = (T)(eps / (double)C);
  PW_GRID_STRIDE(k, B * C) {
    const int64_t b = k / C, c = k - b * C;
    T g = math::ce_bwd(x[k], (T)lse[b], e_c, scale);
    if (c == t[b]) g = g + math::ce_bwd_target((T)eps, scale);  // one write per element, as the CPU
    if (acc) acc_add(dx[k], g);
    else dx[k] = g;
  }
}

// acc_x, acc_q: add into dx, dq, else write them; either may be null.
template <class T>
__global__ void soft_ce_bwd_kernel(T* dx, T* dq, const T* dy, const T* __restrict__ x, const T* __restrict__ q,
                                   const double* lse, const double* sum_q, int64_t B, int64_t C, bool acc_x,
                                   bool acc_q) {
  const T scale = dy[0] / (T)B;
  PW_GRID_STRIDE(k, B * C) {
    const int64_t b = k / C;
    const T l = (T)lse[b];
    if (dx) {
      const T g = math::soft_ce_dx(x[k], q[k], l, (T)sum_q[b], scale);
      if (acc_x) acc_add(dx[k], g);
      else dx[k] = g;
    }
    if (dq) {
      const T g = math::soft_ce_dq(x[k], l, scale);
      if (acc_q) acc_add(dq[k], g);
      else dq[k] = g;
    }
  }
}

void check_rows(const char* op, int64_t B) {
  PW_CHECK(B < (int64_t(1) << 31), op, ": ", B, " rows exceed the CUDA grid");
}

}  // namespace

void cross_entropy_forward_cuda(Tensor& y, Tensor& lse, const Tensor& x, const Tensor& t, int64_t B, int64_t C,
                                double eps) {
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    check_rows("cross_entropy", B);
    Tensor rows = empty({B}, DType::F64, Device::CUDA);  // per-row losses
    if (B > 0) {
      ce_rows_kernel<T><<<(unsigned)B, kRowBlock, 0, cuda::stream()>>>(lse.data<double>(), rows.data<double>(),
                                                                       x.data<T>(), t.data<int64_t>(), C, eps);
      PW_CUDA_LAUNCH_CHECK();
    }
    mean_rows_kernel<T><<<1, 1024, 0, cuda::stream()>>>(y.data<T>(), rows.data<double>(), B);
    PW_CUDA_LAUNCH_CHECK();
  });
}

void cross_entropy_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& x, const Tensor& t, const Tensor& lse,
                                 int64_t B, int64_t C, double eps) {
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    if (B * C == 0) return;
    ce_bwd_kernel<T><<<cuda::grid_for(B * C), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), x.data<T>(), t.data<int64_t>(), lse.data<double>(), B, C, eps, dx.accumulate);
    PW_CUDA_LAUNCH_CHECK();
  });
}

void cross_entropy_soft_forward_cuda(Tensor& y, Tensor& lse, Tensor& sum_q, const Tensor& x, const Tensor& q,
                                     int64_t B, int64_t C) {
  dispatch_float(x.dtype(), "cross_entropy_soft", [&](auto tag) {
    using T = decltype(tag);
    check_rows("cross_entropy_soft", B);
    Tensor rows = empty({B}, DType::F64, Device::CUDA);  // per-row losses
    if (B > 0) {
      soft_ce_rows_kernel<T><<<(unsigned)B, kRowBlock, 0, cuda::stream()>>>(
          lse.data<double>(), sum_q.data<double>(), rows.data<double>(), x.data<T>(), q.data<T>(), C);
      PW_CUDA_LAUNCH_CHECK();
    }
    mean_rows_kernel<T><<<1, 1024, 0, cuda::stream()>>>(y.data<T>(), rows.data<double>(), B);
    PW_CUDA_LAUNCH_CHECK();
  });
}

void cross_entropy_soft_backward_cuda(GradBuf dx, GradBuf dq, const Tensor& dy, const Tensor& x, const Tensor& q,
                                      const Tensor& lse, const Tensor& sum_q, int64_t B, int64_t C) {
  dispatch_float(x.dtype(), "cross_entropy_soft", [&](auto tag) {
    using T = decltype(tag);
    if (B * C == 0) return;
    soft_ce_bwd_kernel<T><<<cuda::grid_for(B * C), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dq.data<T>(), dy.data<T>(), x.data<T>(), q.data<T>(), lse.data<double>(),
        sum_q.data<double>(), B, C, dx.accumulate, dq.accumulate);
    PW_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace pw
