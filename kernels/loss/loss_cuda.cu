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

// ---- CTC ----

namespace {

constexpr int kCtcBlock = 128;

// grid: (B), block: kCtcBlock; the threads share the states s of one frame, frame after frame.
//   lp: (B,T,C)  tgt: (B,S)  alpha: (B,T,2S+1)  y, nll: (B)
template <class T>
__global__ void ctc_alpha_kernel(T* y, double* nll, double* alpha, const T* __restrict__ lp, const int64_t* tgt,
                                 const int64_t* in_len, const int64_t* tgt_len, int64_t TT, int64_t C, int64_t S,
                                 int64_t blank, bool zero_inf) {
  const int64_t b = blockIdx.x, Lw = 2 * S + 1, Tb = in_len[b], L = 2 * tgt_len[b] + 1;
  double* a = alpha + b * TT * Lw;
  const int64_t* tg = tgt + b * S;
  for (int64_t t = 0; t < Tb; ++t) {
    for (int64_t s = threadIdx.x; s < L; s += blockDim.x)
      a[t * Lw + s] = math::ctc_alpha_at(t ? a + (t - 1) * Lw : nullptr, lp + (b * TT + t) * C, tg, s, L, blank);
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    double v;
    if (Tb == 0) {
      v = L == 1 ? 0.0 : math::ctc_inf();
    } else {
      const double* last = a + (Tb - 1) * Lw;
      v = -(L > 1 ? math::ctc_log_add(last[L - 1], last[L - 2]) : last[0]);
    }
    nll[b] = v;
    y[b] = (T)(zero_inf && v == math::ctc_inf() ? 0.0 : v);
  }
}

// grid: (B), block: kCtcBlock.   beta: (B,T,2S+1)
template <class T>
__global__ void ctc_beta_kernel(double* beta, const T* __restrict__ lp, const int64_t* tgt, const int64_t* in_len,
                                const int64_t* tgt_len, int64_t TT, int64_t C, int64_t S, int64_t blank) {
  const int64_t b = blockIdx.x, Lw = 2 * S + 1, Tb = in_len[b], L = 2 * tgt_len[b] + 1;
  double* be = beta + b * TT * Lw;
  for (int64_t t = Tb - 1; t >= 0; --t) {
    for (int64_t s = threadIdx.x; s < L; s += blockDim.x)
      be[t * Lw + s] =
          math::ctc_beta_at(t + 1 < Tb ? be + (t + 1) * Lw : nullptr, lp + (b * TT + t) * C, tgt + b * S, s, L, blank);
    __syncthreads();
  }
}

// One thread per (b,t,c).   dlp, lp: (B,T,C)  alpha, beta: (B,T,2S+1)  dy, nll: (B)
template <class T>
__global__ void ctc_grad_kernel(T* dlp, const T* dy, const T* __restrict__ lp, const int64_t* tgt,
                                const int64_t* in_len, const int64_t* tgt_len, const double* alpha, const double* beta,
                                const double* nll, int64_t B, int64_t TT, int64_t C, int64_t S, int64_t blank,
                                bool acc) {
  const int64_t Lw = 2 * S + 1;
  PW_GRID_STRIDE(k, B * TT * C) {
    const int64_t c = k % C, bt = k / C, t = bt % TT, b = bt / TT;
    const bool live = t < in_len[b] && nll[b] != math::ctc_inf();
    const T v = live ? math::ctc_grad_at(alpha + bt * Lw, beta + bt * Lw, lp + bt * C, tgt + b * S, c,
                                         2 * tgt_len[b] + 1, blank, nll[b], (double)dy[b])
                     : T(0);
    if (acc) acc_add(dlp[k], v);
    else dlp[k] = v;
  }
}

}  // namespace

void ctc_forward_cuda(Tensor& y, Tensor& nll, Tensor& alpha, const Tensor& lp, const Tensor& tgt,
                      const Tensor& in_len, const Tensor& tgt_len, int64_t blank, bool zero_inf) {
  dispatch_float(lp.dtype(), "ctc_loss", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = lp.size(0);
    check_rows("ctc_loss", B);
    if (B == 0) return;
    ctc_alpha_kernel<T><<<(unsigned)B, kCtcBlock, 0, cuda::stream()>>>(
        y.data<T>(), nll.data<double>(), alpha.data<double>(), lp.data<T>(), tgt.data<int64_t>(),
        in_len.data<int64_t>(), tgt_len.data<int64_t>(), lp.size(1), lp.size(2), tgt.size(1), blank, zero_inf);
    PW_CUDA_LAUNCH_CHECK();
  });
}

void ctc_backward_cuda(GradBuf dlp, const Tensor& dy, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                       const Tensor& tgt_len, const Tensor& alpha, const Tensor& nll, int64_t blank) {
  dispatch_float(lp.dtype(), "ctc_loss", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = lp.size(0), TT = lp.size(1), C = lp.size(2), S = tgt.size(1);
    if (B * TT * C == 0) return;
    Tensor beta = empty(alpha.shape(), DType::F64, Device::CUDA);
    ctc_beta_kernel<T><<<(unsigned)B, kCtcBlock, 0, cuda::stream()>>>(beta.data<double>(), lp.data<T>(),
                                                                       tgt.data<int64_t>(), in_len.data<int64_t>(),
                                                                       tgt_len.data<int64_t>(), TT, C, S, blank);
    PW_CUDA_LAUNCH_CHECK();
    ctc_grad_kernel<T><<<cuda::grid_for(B * TT * C), cuda::kBlock, 0, cuda::stream()>>>(
        dlp.data<T>(), dy.data<T>(), lp.data<T>(), tgt.data<int64_t>(), in_len.data<int64_t>(),
        tgt_len.data<int64_t>(), alpha.data<double>(), beta.data<double>(), nll.data<double>(), B, TT, C, S, blank,
        dlp.accumulate);
    PW_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace pw
