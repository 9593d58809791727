// layer_norm and batch_norm on CUDA (see norm_cuda.h); element math from norm_math.h.
#include "runtime/cuda/common.cuh"
#include "kernels/norm/norm_cuda.h"
#include "kernels/norm/norm_math.h"

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

// grid: (N), block: kRowBlock.   dx, dy, x: (N,C)
template <class T>
__global__ void ln_bwd_dx_kernel(T* dx, const T* __restrict__ dy, const T* __restrict__ x, const T* mean,
                                 const T* rstd, const T* w, int64_t C) {
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
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    acc_add(dxr[c], math::norm_bwd(dyr[c] * (w ? w[c] : T(1)), (xr[c] - m) * rs, rs, a, bb));
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
// dw[c] += sum over chunks (in chunk order) of part_w[k, c]; db likewise.
template <class T>
__global__ void ln_bwd_param_final(T* dw, T* db, const double* part_w, const double* part_b, int64_t chunks,
                                   int64_t C) {
  PW_GRID_STRIDE(c, C) {
    double sw = 0, sb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      sw += part_w[k * C + c];
      sb += part_b[k * C + c];
    }
    if (dw) dw[c] += (T)sw;
    if (db) db[c] += (T)sb;
  }
}

// ---------------------------------------------------------------- batch_norm

// Element k of channel c's set (B*S values): x[(b*C + c)*S + i], k = b*S + i.
__device__ __forceinline__ int64_t bn_at(int64_t k, int64_t c, int64_t C, int64_t S) {
  const int64_t b = k / S;
  return (b * C + c) * S + (k - b * S);
}

// grid: (C), block: kRowBlock.   x: (B,C,S)  mean, rstd, rm, rv: (C)
template <class T>
__global__ void bn_stats_kernel(T* mean, T* rstd, T* rm, T* rv, const T* __restrict__ x, int64_t B, int64_t C,
                                int64_t S, double momentum, double eps) {
  __shared__ double sh[32];
  const int64_t c = blockIdx.x, n = B * S;
  double s = 0;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += (double)x[bn_at(k, c, C, S)];
  const double m = cuda::block_sum(s, sh) / (double)n;
  double ss = 0;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const double d = (double)x[bn_at(k, c, C, S)] - m;
    ss += d * d;
  }
  ss = cuda::block_sum(ss, sh);
  if (threadIdx.x == 0) {
    mean[c] = (T)m;
    rstd[c] = (T)math::norm_rstd(ss / (double)n, eps);  // the biased variance normalises
    if (rm) {
      rm[c] = (T)math::running_update((double)rm[c], m, momentum);
      rv[c] = (T)math::running_update((double)rv[c], ss / (double)(n - 1), momentum);  // unbiased is tracked
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
// sums[c] = sum dy, sums[C + c] = sum dy * xhat over channel c; dw, db += them.
// grid: (C), block: kRowBlock.
template <class T>
__global__ void bn_bwd_sums_kernel(double* sums, T* dw, T* db, const T* __restrict__ dy, const T* __restrict__ x,
                                   const T* mean, const T* rstd, int64_t B, int64_t C, int64_t S) {
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
    if (dw) dw[c] += (T)sdyx;
    if (db) db[c] += (T)sdy;
  }
}
template <class T>
__global__ void bn_bwd_dx_kernel(T* dx, const double* sums, const T* __restrict__ dy, const T* __restrict__ x,
                                 const T* mean, const T* rstd, const T* w, int64_t B, int64_t C, int64_t S,
                                 bool training) {
  const double n = (double)(B * S);
  PW_GRID_STRIDE(k, B * C * S) {
    const int64_t c = (k / S) % C;
    const T m = mean[c], rs = rstd[c], wc = w ? w[c] : T(1);
    if (training) {
      const T a = (T)(wc * sums[c] / n), bb = (T)(wc * sums[C + c] / n);
      acc_add(dx[k], math::norm_bwd(dy[k] * wc, (x[k] - m) * rs, rs, a, bb));
    } else {
      acc_add(dx[k], dy[k] * wc * rs);
    }
  }
}

void check_grid(const char* op, int64_t blocks) {
  PW_CHECK(blocks < (int64_t(1) << 31), op, ": ", blocks, " blocks exceed the CUDA grid");
}

}  // namespace

template <class T>
void layer_norm_forward_cuda(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t N, int64_t C,
                             double eps) {
  if (N == 0 || C == 0) return;
  check_grid("layer_norm", N);
  ln_fwd_kernel<T><<<(unsigned)N, kRowBlock, 0, cuda::stream()>>>(y, mean, rstd, x, w, b, C, eps);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void layer_norm_backward_cuda(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                              const T* w, int64_t N, int64_t C) {
  if (C == 0) return;
  if (dx && N > 0) {
    check_grid("layer_norm", N);
    ln_bwd_dx_kernel<T><<<(unsigned)N, kRowBlock, 0, cuda::stream()>>>(dx, dy, x, mean, rstd, w, C);
    PW_CUDA_LAUNCH_CHECK();
  }
  if (!dw && !db) return;
  if (N == 0) return;  // the sums are zero: dw, db (zero-initialised or holding earlier sums) stay
  const int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
  PW_CHECK(chunks < 65536, "layer_norm: ", N, " rows exceed the parameter-gradient grid");
  const size_t bytes = 2 * (size_t)(chunks * C) * sizeof(double);
  double* part = static_cast<double*>(cuda::alloc(bytes));
  dim3 grid((unsigned)((C + 31) / 32), (unsigned)chunks), block(32, 8);
  ln_bwd_param_part<T><<<grid, block, 0, cuda::stream()>>>(part, part + chunks * C, dy, x, mean, rstd, N, C);
  PW_CUDA_LAUNCH_CHECK();
  ln_bwd_param_final<T><<<cuda::grid_for(C), cuda::kBlock, 0, cuda::stream()>>>(dw, db, part, part + chunks * C,
                                                                                chunks, C);
  PW_CUDA_LAUNCH_CHECK();
  cuda::free(part, bytes);  // stream-ordered: the next user of the block runs after these kernels
}

template <class T>
void batch_norm_stats_cuda(T* mean, T* rstd, T* rm, T* rv, const T* x, int64_t B, int64_t C, int64_t S, bool training,
                           double momentum, double eps) {
  if (C == 0) return;
  check_grid("batch_norm", C);
  if (training) bn_stats_kernel<T><<<(unsigned)C, kRowBlock, 0, cuda::stream()>>>(mean, rstd, rm, rv, x, B, C, S,
                                                                                  momentum, eps);
  else bn_eval_stats_kernel<T><<<cuda::grid_for(C), cuda::kBlock, 0, cuda::stream()>>>(mean, rstd, rm, rv, C, eps);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void batch_norm_apply_cuda(T* y, const T* x, const T* mean, const T* rstd, const T* w, const T* b, int64_t B,
                           int64_t C, int64_t S) {
  const int64_t n = B * C * S;
  if (n == 0) return;
  bn_apply_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, mean, rstd, w, b, n, C, S);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void batch_norm_backward_cuda(T* dx, T* dw, T* db, double* sums, const T* dy, const T* x, const T* mean,
                              const T* rstd, const T* w, int64_t B, int64_t C, int64_t S, bool training) {
  if (C == 0) return;
  check_grid("batch_norm", C);
  bn_bwd_sums_kernel<T><<<(unsigned)C, kRowBlock, 0, cuda::stream()>>>(sums, dw, db, dy, x, mean, rstd, B, C, S);
  PW_CUDA_LAUNCH_CHECK();
  if (!dx || B * C * S == 0) return;
  bn_bwd_dx_kernel<T><<<cuda::grid_for(B * C * S), cuda::kBlock, 0, cuda::stream()>>>(dx, sums, dy, x, mean, rstd, w,
                                                                                      B, C, S, training);
  PW_CUDA_LAUNCH_CHECK();
}

#define PW_INST(T)                                                                                                  \
  template void layer_norm_forward_cuda<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, double);     \
  template void layer_norm_backward_cuda<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,  \
                                            int64_t);                                                               \
  template void batch_norm_stats_cuda<T>(T*, T*, T*, T*, const T*, int64_t, int64_t, int64_t, bool, double, double); \
  template void batch_norm_apply_cuda<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,     \
                                         int64_t);                                                                  \
  template void batch_norm_backward_cuda<T>(T*, T*, T*, double*, const T*, const T*, const T*, const T*, const T*,  \
                                            int64_t, int64_t, int64_t, bool);
PW_INST(float)
PW_INST(double)
#undef PW_INST

}  // namespace pw
