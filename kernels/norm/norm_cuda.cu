// layer_norm and batch_norm on CUDA: kernels and tensor-level launchers (declared in
// norm_kernels.h); element math from norm_math.h. Backward kernels take `acc` flags:
// add into a gradient buffer, else write it (GradBuf contract).
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/norm/norm_kernels.h"
#include "kernels/norm/norm_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using cuda::acc_add;

constexpr int kRowBlock = 256;
constexpr int kChunkRows = 64;  // rows per partial sum of dw, db

// ---------------------------------------------------------------- layer_norm

// grid: (N), block: kRowBlock.   x, y: (N,C)  mean, rstd: (N)
template <class T>
__global__ void ln_fwd_kernel(T* y, T* mean, T* rstd, const T* __restrict__ x, const T* w, const T* b, int64_t C,
                              double eps) {
  __shared__ double sh[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * C;
  T* yr = y + r * C;
  double s = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += (double)xr[c];
  const T mt = (T)(cuda::block_sum(s, sh) / (double)C);
  double v = 0;  // around the mean: no cancellation for rows with a large mean
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T d = xr[c] - mt;
    v += (double)(d * d);
  }
  v = cuda::block_sum(v, sh) / (double)C;
  const T rs = (T)math::norm_rstd(v, eps);
  if (threadIdx.x == 0) {
    mean[r] = mt;
    rstd[r] = rs;
  }
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    yr[c] = math::norm_fwd(xr[c], mt, rs, w ? w[c] : T(1), b ? b[c] : T(0));
}

// grid: (N), block: kRowBlock.   dx, dy, x: (N,C)   acc: add into dx, else write it.
template <class T>
__global__ void ln_bwd_dx_kernel(T* dx, const T* __restrict__ dy, const T* __restrict__ x, const T* mean,
                                 const T* rstd, const T* w, int64_t C, bool acc) {
  __shared__ double sh[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * C;
  const T* dyr = dy + r * C;
  T* dxr = dx + r * C;
  const T m = mean[r], rs = rstd[r];
  double sa = 0, sb = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T dxh = dyr[c] * (w ? w[c] : T(1));
    sa += (double)dxh;
    sb += (double)(dxh * ((xr[c] - m) * rs));
  }
  const T a = (T)(cuda::block_sum(sa, sh) / (double)C);
  const T bb = (T)(cuda::block_sum(sb, sh) / (double)C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T g = math::norm_bwd(dyr[c] * (w ? w[c] : T(1)), (xr[c] - m) * rs, rs, a, bb);
    if (acc) acc_add(dxr[c], g);
    else dxr[c] = g;
  }
}

// Partial sums of dy * xhat and dy over a chunk of kChunkRows rows, per column.
// grid: (ceil(C/32), chunks), block: (32, 8).   part_w, part_b: (chunks, C)
template <class T>
__global__ void ln_bwd_param_part(double* part_w, double* part_b, const T* __restrict__ dy, const T* __restrict__ x,
                                  const T* mean, const T* rstd, int64_t N, int64_t C) {
  __shared__ double pw_[8][32], pb_[8][32];
  const int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = (int64_t)blockIdx.y * kChunkRows, r1 = min(N, r0 + kChunkRows);
  double gw = 0, gb = 0;
  if (c < C)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      const T d = dy[r * C + c];
      gw += (double)(d * ((x[r * C + c] - mean[r]) * rstd[r]));
      gb += (double)d;
    }
  pw_[threadIdx.y][threadIdx.x] = gw;
  pb_[threadIdx.y][threadIdx.x] = gb;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double sw = 0, sb = 0;
    for (int j = 0; j < 8; ++j) {
      sw += pw_[j][threadIdx.x];
      sb += pb_[j][threadIdx.x];
    }
    part_w[(int64_t)blockIdx.y * C + c] = sw;
    part_b[(int64_t)blockIdx.y * C + c] = sb;
  }
}
// dw[c] (+)= sum over chunks (in chunk order) of part_w[k, c]; db likewise. acc_w, acc_b:
// add, else write (no chunks: the sums are 0).
template <class T>
__global__ void ln_bwd_param_final(T* dw, T* db, const double* part_w, const double* part_b, int64_t chunks,
                                   int64_t C, bool acc_w, bool acc_b) {
  PW_GRID_STRIDE(c, C) {
    double sw = 0, sb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      sw += part_w[k * C + c];
      sb += part_b[k * C + c];
    }
    if (dw) dw[c] = (acc_w ? dw[c] : T(0)) + (T)sw;
    if (db) db[c] = (acc_b ? db[c] : T(0)) + (T)sb;
  }
}

// ---------------------------------------------------------------- batch_norm

// Element k of channel c's set (B*S values): x[(b*C + c)*S + i], k = b*S + i.
__device__ __forceinline__ int64_t bn_at(int64_t k, int64_t c, int64_t C, int64_t S) {
  const int64_t b = k / S;
  return (b * C + c) * S + (k - b * S);
}

// Channel c's mean m and sum of squared deviations ss over (B, S), two passes in double;
// every thread of the block gets both (block_sum broadcasts).   x: (B,C,S)
template <class T>
__device__ void bn_channel_moments(double& m, double& ss, const T* __restrict__ x, int64_t c, int64_t B, int64_t C,
                                   int64_t S, double* sh) {
  const int64_t n = B * S;
  double s = 0;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += (double)x[bn_at(k, c, C, S)];
  m = cuda::block_sum(s, sh) / (double)n;
  double q = 0;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const double d = (double)x[bn_at(k, c, C, S)] - m;
    q += d * d;
  }
  ss = cuda::block_sum(q, sh);
}

// grid: (C), block: kRowBlock.   x: (B,C,S)  mean, rstd, rm, rv: (C)
template <class T>
__global__ void bn_stats_kernel(T* mean, T* rstd, T* rm, T* rv, const T* __restrict__ x, int64_t B, int64_t C,
                                int64_t S, double momentum, double eps) {
  __shared__ double sh[32];
  const int64_t c = blockIdx.x, n = B * S;
  double m, ss;
  bn_channel_moments(m, ss, x, c, B, C, S, sh);
  if (threadIdx.x == 0) {
    mean[c] = (T)m;
    rstd[c] = (T)math::norm_rstd(ss / (double)n, eps);  // the biased variance normalises
    if (rm) {
      rm[c] = (T)math::running_update((double)rm[c], m, momentum);
      rv[c] = (T)math::running_update((double)rv[c], ss / (double)(n - 1), momentum);  // unbiased is tracked
    }
  }
}
// SyncBN, before the combination over processes: moments[3c..3c+2] = (count, mean, M2) of
// channel c, as bn_stats_kernel computes them.   grid: (C), block: kRowBlock.   x: (B,C,S)
template <class T>
__global__ void bn_moments_kernel(double* moments, const T* __restrict__ x, int64_t B, int64_t C, int64_t S) {
  __shared__ double sh[32];
  const int64_t c = blockIdx.x, n = B * S;
  double m, ss;
  bn_channel_moments(m, ss, x, c, B, C, S, sh);
  if (threadIdx.x == 0) {
    moments[3 * c] = (double)n;
    moments[3 * c + 1] = m;
    moments[3 * c + 2] = ss;
  }
}
// SyncBN, after the combination: mean, rstd and the running statistics from the global
// (count, mean, M2) of each channel.   moments: (3C)  mean, rstd, rm, rv: (C)
template <class T>
__global__ void bn_stats_from_moments_kernel(T* mean, T* rstd, T* rm, T* rv, const double* moments, int64_t C,
                                             double momentum, double eps) {
  PW_GRID_STRIDE(c, C) {
    const double n = moments[3 * c], m = moments[3 * c + 1], ss = moments[3 * c + 2];
    mean[c] = (T)m;
    rstd[c] = (T)math::norm_rstd(ss / n, eps);
    if (rm) {
      rm[c] = (T)math::running_update((double)rm[c], m, momentum);
      rv[c] = (T)math::running_update((double)rv[c], ss / (n - 1), momentum);
    }
  }
}
template <class T>
__global__ void bn_eval_stats_kernel(T* mean, T* rstd, const T* rm, const T* rv, int64_t C, double eps) {
  PW_GRID_STRIDE(c, C) {
    mean[c] = rm[c];
    rstd[c] = (T)math::norm_rstd((double)rv[c], eps);
  }
}
template <class T>
__global__ void bn_apply_kernel(T* y, const T* __restrict__ x, const T* mean, const T* rstd, const T* w, const T* b,
                                int64_t n, int64_t C, int64_t S) {
  PW_GRID_STRIDE(k, n) {
    const int64_t c = (k / S) % C;
    y[k] = math::norm_fwd(x[k], mean[c], rstd[c], w ? w[c] : T(1), b ? b[c] : T(0));
  }
}
// sums[c] = sum dy, sums[C + c] = sum dy * xhat over channel c; dw, db (+)= them (acc_w, acc_b: add).
// grid: (C), block: kRowBlock.
template <class T>
__global__ void bn_bwd_sums_kernel(double* sums, T* dw, T* db, const T* __restrict__ dy, const T* __restrict__ x,
                                   const T* mean, const T* rstd, int64_t B, int64_t C, int64_t S, bool acc_w,
                                   bool acc_b) {
  __shared__ double sh[32];
  const int64_t c = blockIdx.x, n = B * S;
  const T m = mean[c], rs = rstd[c];
  double sdy = 0, sdyx = 0;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const int64_t at = bn_at(k, c, C, S);
    sdy += (double)dy[at];
    sdyx += (double)(dy[at] * ((x[at] - m) * rs));
  }
  sdy = cuda::block_sum(sdy, sh);
  sdyx = cuda::block_sum(sdyx, sh);
  if (threadIdx.x == 0) {
    sums[c] = sdy;
    sums[C + c] = sdyx;
    if (dw) dw[c] = (acc_w ? dw[c] : T(0)) + (T)sdyx;
    if (db) db[c] = (acc_b ? db[c] : T(0)) + (T)sdy;
  }
}
// acc: add into dx, else write it. n: the normalised set's size (B*S; global with SyncBN).
template <class T>
__global__ void bn_bwd_dx_kernel(T* dx, const double* sums, const T* __restrict__ dy, const T* __restrict__ x,
                                 const T* mean, const T* rstd, const T* w, int64_t B, int64_t C, int64_t S,
                                 bool training, bool acc, double n) {
  PW_GRID_STRIDE(k, B * C * S) {
    const int64_t c = (k / S) % C;
    const T m = mean[c], rs = rstd[c], wc = w ? w[c] : T(1);
    T g;
    if (training) {
      const T a = (T)(wc * sums[c] / n), bb = (T)(wc * sums[C + c] / n);
      g = math::norm_bwd(dy[k] * wc, (x[k] - m) * rs, rs, a, bb);
    } else {
      g = dy[k] * wc * rs;
    }
    if (acc) acc_add(dx[k], g);
    else dx[k] = g;
  }
}

void check_grid(const char* op, int64_t blocks) {
  PW_CHECK(blocks < (int64_t(1) << 31), op, ": ", blocks, " blocks exceed the CUDA grid");
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void layer_norm_forward_cuda(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                             int64_t N, int64_t C, double eps) {
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    if (N == 0 || C == 0) return;
    check_grid("layer_norm", N);
    ln_fwd_kernel<T><<<(unsigned)N, kRowBlock, 0, cuda::stream()>>>(y.data<T>(), mean.data<T>(), rstd.data<T>(),
                                                                    x.data<T>(), ptr_or_null<T>(w),
                                                                    ptr_or_null<T>(b), C, eps);
    PW_CUDA_LAUNCH_CHECK();
  });
}

void layer_norm_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                              const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t N, int64_t C) {
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    if (C == 0) return;
    if (dx && N > 0) {
      check_grid("layer_norm", N);
      ln_bwd_dx_kernel<T><<<(unsigned)N, kRowBlock, 0, cuda::stream()>>>(
          dx.data<T>(), dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(), ptr_or_null<T>(w), C,
          dx.accumulate);
      PW_CUDA_LAUNCH_CHECK();
    }
    if (!dw && !db) return;
    // No rows: no partial sums, and the final kernel writes (or adds) zeros.
    const int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
    PW_CHECK(chunks < 65536, "layer_norm: ", N, " rows exceed the parameter-gradient grid");
    const size_t bytes = 2 * (size_t)(chunks * C) * sizeof(double);
    double* part = chunks ? static_cast<double*>(cuda::alloc(bytes)) : nullptr;
    if (chunks) {
      dim3 grid((unsigned)((C + 31) / 32), (unsigned)chunks), block(32, 8);
      ln_bwd_param_part<T><<<grid, block, 0, cuda::stream()>>>(part, part + chunks * C, dy.data<T>(), x.data<T>(),
                                                               mean.data<T>(), rstd.data<T>(), N, C);
      PW_CUDA_LAUNCH_CHECK();
    }
    ln_bwd_param_final<T><<<cuda::grid_for(C), cuda::kBlock, 0, cuda::stream()>>>(
        dw.data<T>(), db.data<T>(), part, part ? part + chunks * C : nullptr, chunks, C, dw.accumulate,
        db.accumulate);
    PW_CUDA_LAUNCH_CHECK();
    if (part) cuda::free(part, bytes);  // stream-ordered: the next user of the block runs after these kernels
  });
}

void batch_norm_forward_cuda(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                             const Tensor& b, const Tensor& rm, const Tensor& rv, int64_t B, int64_t C, int64_t S,
                             bool training, double momentum, double eps, BatchNormSync* sync, double* count) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    if (C == 0) return;
    check_grid("batch_norm", C);
    if (training && sync) {
      // SyncBN: the per-channel moments go through the host to the process group's
      // combination (a host collective), then back.
      const size_t bytes = 3 * (size_t)C * sizeof(double);
      Tensor dmom = empty({3 * C}, DType::F64, Device::CUDA);
      bn_moments_kernel<T><<<(unsigned)C, kRowBlock, 0, cuda::stream()>>>(dmom.data<double>(), x.data<T>(), B, C, S);
      PW_CUDA_LAUNCH_CHECK();
      std::vector<double> mom(3 * (size_t)C);
      cuda::copy_d2h(mom.data(), dmom.data<double>(), bytes);
      sync->combine_moments(mom);
      *count = mom[0];
      cuda::copy_h2d(dmom.data<double>(), mom.data(), bytes);
      bn_stats_from_moments_kernel<T><<<cuda::grid_for(C), cuda::kBlock, 0, cuda::stream()>>>(
          mean.data<T>(), rstd.data<T>(), ptr_or_null<T>(rm), ptr_or_null<T>(rv), dmom.data<double>(), C, momentum,
          eps);
    } else if (training)
      bn_stats_kernel<T><<<(unsigned)C, kRowBlock, 0, cuda::stream()>>>(mean.data<T>(), rstd.data<T>(),
                                                                        ptr_or_null<T>(rm), ptr_or_null<T>(rv),
                                                                        x.data<T>(), B, C, S, momentum, eps);
    else
      bn_eval_stats_kernel<T><<<cuda::grid_for(C), cuda::kBlock, 0, cuda::stream()>>>(
          mean.data<T>(), rstd.data<T>(), rm.data<T>(), rv.data<T>(), C, eps);
    PW_CUDA_LAUNCH_CHECK();
    const int64_t n = B * C * S;
    if (n == 0) return;
    bn_apply_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        y.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(), ptr_or_null<T>(w), ptr_or_null<T>(b), n, C, S);
    PW_CUDA_LAUNCH_CHECK();
  });
}

void batch_norm_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                              const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t B, int64_t C,
                              int64_t S, bool training, BatchNormSync* sync, double count) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    if (C == 0) return;
    check_grid("batch_norm", C);
    Tensor sums = empty({2 * C}, DType::F64, Device::CUDA);  // per channel: sum dy, sum dy * xhat
    bn_bwd_sums_kernel<T><<<(unsigned)C, kRowBlock, 0, cuda::stream()>>>(
        sums.data<double>(), dw.data<T>(), db.data<T>(), dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(),
        B, C, S, dw.accumulate, db.accumulate);
    PW_CUDA_LAUNCH_CHECK();
    double n = (double)(B * S);
    if (training && sync) {  // SyncBN: the sums over every process, through the host
      std::vector<double> host(2 * (size_t)C);
      cuda::copy_d2h(host.data(), sums.data<double>(), host.size() * sizeof(double));
      sync->sum(host);
      cuda::copy_h2d(sums.data<double>(), host.data(), host.size() * sizeof(double));
      n = count;
    }
    if (!dx || B * C * S == 0) return;
    bn_bwd_dx_kernel<T><<<cuda::grid_for(B * C * S), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), sums.data<double>(), dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(),
        ptr_or_null<T>(w), B, C, S, training, dx.accumulate, n);
    PW_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace pw
