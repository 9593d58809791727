// CPU kernels of the normalisations (layer_norm, batch_norm): compute only; the
// ops, nodes and dispatch rows are in norm.cpp.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/norm/norm_kernels.h"
#include "kernels/norm/norm_math.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

namespace {

using detail::lane_sum;
using detail::short_sum;

// ---------------------------------------------------------------- layer_norm

// y = (x - mean) * rstd * w + b per row.   x, y: (N,C)  w, b: (C) or null  mean, rstd: (N)
template <class T>
void layer_norm_forward_loop(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t N, int64_t C,
                             double eps) {
#pragma omp parallel for if (N * C > kParallelGrain)
  for (int64_t r = 0; r < N; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    // Two passes (the variance around the mean): no cancellation for rows with a large mean.
    const T mt = (T)(short_sum<T>(C, [&](int64_t c) { return xr[c]; }) / (double)C);
    const double v = short_sum<T>(C, [&](int64_t c) { const T d = xr[c] - mt; return d * d; }) / (double)C;
    const T rs = (T)math::norm_rstd(v, eps);
    mean[r] = mt;
    rstd[r] = rs;
    for (int64_t c = 0; c < C; ++c) yr[c] = math::norm_fwd(xr[c], mt, rs, w ? w[c] : T(1), b ? b[c] : T(0));
  }
}

// Forward was y = layer_norm(x) * w + b.   dx, dy, x: (N,C)  dw, db, w: (C) or null  mean, rstd: (N)
// dx (+)= norm_bwd(...) per row;  dw (+)= sum_rows dy * xhat;  db (+)= sum_rows dy.
// fresh[i]: that buffer is new and uninitialised, so it is written (=), not added to.
template <class T>
void layer_norm_backward_loop(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                              const T* w, int64_t N, int64_t C, const bool fresh[3]) {
  // dw, db sum over rows: fixed chunks of rows give partial sums (added in chunk order
  // afterwards), so the result does not depend on the thread count.
  const int64_t rows = std::max<int64_t>(16, (N + 127) / 128), nc = (N + rows - 1) / rows;
  const bool params = dw || db;
  if (!dx && !params) return;
  // (at least one chunk: with no rows, the sums are the zeros a fresh dw, db must get)
  std::vector<double> part_w(params ? std::max<int64_t>(nc, 1) * C : 0), part_b(part_w.size());
  std::vector<T> ones;  // no weight: w = 1, so the loops stay branch-free (and vectorise)
  if (!w) {
    ones.assign(C, T(1));
    w = ones.data();
  }
#pragma omp parallel for if (N * C > kParallelGrain)
  for (int64_t k = 0; k < nc; ++k) {
    double* gw = params ? part_w.data() + k * C : nullptr;
    double* gb = params ? part_b.data() + k * C : nullptr;
    for (int64_t r = k * rows; r < std::min(N, (k + 1) * rows); ++r) {
      const T* xr = x + r * C;
      const T* dyr = dy + r * C;
      const T m = mean[r], rs = rstd[r];
      if (!dx) {  // only the parameter partials
        for (int64_t c = 0; c < C; ++c) {
          gw[c] += (double)(dyr[c] * ((xr[c] - m) * rs));
          gb[c] += (double)dyr[c];
        }
        continue;
      }
      // Row means of dxhat and dxhat*xhat; the row (a few KB) stays in L1 across the passes.
      const T a = (T)(short_sum<T>(C, [&](int64_t c) { return dyr[c] * w[c]; }) / (double)C);
      const T bb = (T)(short_sum<T>(C, [&](int64_t c) { return dyr[c] * w[c] * ((xr[c] - m) * rs); }) / (double)C);
      T* dxr = dx + r * C;
      if (fresh[0]) {  // a fresh buffer: write (NaN-safe: its old contents are never read)
        for (int64_t c = 0; c < C; ++c) dxr[c] = math::norm_bwd(dyr[c] * w[c], (xr[c] - m) * rs, rs, a, bb);
      } else {
        for (int64_t c = 0; c < C; ++c) dxr[c] += math::norm_bwd(dyr[c] * w[c], (xr[c] - m) * rs, rs, a, bb);
      }
      if (params) {
        for (int64_t c = 0; c < C; ++c) {
          gw[c] += (double)(dyr[c] * ((xr[c] - m) * rs));
          gb[c] += (double)dyr[c];
        }
      }
    }
  }
  if (!params) return;
  // Chunk k's partials are added in k order for every c (rows of part_* read contiguously).
  for (int64_t k = 1; k < nc; ++k)
    for (int64_t c = 0; c < C; ++c) {
      part_w[c] += part_w[k * C + c];
      part_b[c] += part_b[k * C + c];
    }
  for (int64_t c = 0; c < C; ++c) {
    if (dw) dw[c] = (fresh[1] ? T(0) : dw[c]) + (T)part_w[c];
    if (db) db[c] = (fresh[2] ? T(0) : db[c]) + (T)part_b[c];
  }
}

// ---------------------------------------------------------------- batch_norm

// Per-channel sum over (B, S) of f(v, c) for the elements v of channel c, in double.  x: (B,C,S)
template <class T, class F>
double channel_sum(const T* x, int64_t B, int64_t C, int64_t S, int64_t c, F f) {
  double s = 0;
  for (int64_t b = 0; b < B; ++b) {
    const T* run = x + (b * C + c) * S;
    s += lane_sum(S, [&](int64_t i) { return f(run[i], (b * C + c) * S + i); });
  }
  return s;
}


// Batch (training) or running (eval) statistics, running statistics updated in training,
// then y = norm_fwd per element.   x, y: (B,C,S)  w, b, rm, rv: (C) or null  mean, rstd: (C)
// sync (training; may be null): the per-channel (count, mean, M2) are combined over the
// processes before the rest; *count = the normalised set's size.
template <class T>
void batch_norm_forward_loop(T* py, T* pm, T* pr, const T* px, const T* w, const T* b, T* rm, T* rv, int64_t B,
                             int64_t C, int64_t S, bool training, double momentum, double eps, BatchNormSync* sync,
                             double* count) {
  if (training) {
    const double n = (double)(B * S);
    // Per channel (count, mean, M2): two passes (the squares around the mean).
    std::vector<double> mom(3 * (size_t)C);
#pragma omp parallel for if (B * C * S > kParallelGrain)
    for (int64_t c = 0; c < C; ++c) {
      const double m = channel_sum(px, B, C, S, c, [](T v, int64_t) { return v; }) / n;
      mom[3 * c] = n;
      mom[3 * c + 1] = m;
      mom[3 * c + 2] = channel_sum(px, B, C, S, c, [&](T v, int64_t) { double d = v - m; return d * d; });
    }
    if (sync) sync->combine_moments(mom);  // SyncBN: every process's batch together
    if (C > 0) *count = mom[0];
    for (int64_t c = 0; c < C; ++c) {
      const double N = mom[3 * c], m = mom[3 * c + 1], ss = mom[3 * c + 2];
      pm[c] = (T)m;
      pr[c] = (T)math::norm_rstd(ss / N, eps);  // biased variance normalises
      if (rm) {
        rm[c] = (T)math::running_update((double)rm[c], m, momentum);
        rv[c] = (T)math::running_update((double)rv[c], ss / (N - 1), momentum);  // unbiased is tracked
      }
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      pm[c] = rm[c];
      pr[c] = (T)math::norm_rstd((double)rv[c], eps);
    }
  }
#pragma omp parallel for if (B * C * S > kParallelGrain)
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const int64_t c = bc % C;
    const T m = pm[c], rs = pr[c], wc = w ? w[c] : T(1), bc_ = b ? b[c] : T(0);
    const T* xr = px + bc * S;
    T* yr = py + bc * S;
    for (int64_t i = 0; i < S; ++i) yr[i] = math::norm_fwd(xr[i], m, rs, wc, bc_);
  }
}

// Forward was y = batch_norm(x) * w + b.   dx, dy, x: (B,C,S)  dw, db, w, mean, rstd: (C), may be null
// dw (+)= sum dy * xhat, db (+)= sum dy per channel; dx (+)= norm_bwd (training) or dy * w * rstd (eval).
// kAccX, acc_w, acc_b: add into dx, dw, db, else write them (GradBuf contract).
// sync (training; may be null): dx uses the sums over every process and `count` (forward's).
template <class T, bool kAccX>
void batch_norm_backward_loop(T* dx, T* dw, T* db, const T* pdy, const T* px, const T* pm, const T* pr, const T* w,
                              int64_t B, int64_t C, int64_t S, bool training, bool acc_w, bool acc_b,
                              BatchNormSync* sync, double count) {
  double n = (double)(B * S);
  // Per channel: sdy = sum dy, sdyx = sum dy * xhat (over B and S).
  std::vector<double> sdy(C), sdyx(C);
#pragma omp parallel for if (B * C * S > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    const T m = pm[c], rs = pr[c];
    sdy[c] = channel_sum(pdy, B, C, S, c, [](T v, int64_t) { return v; });
    sdyx[c] = channel_sum(pdy, B, C, S, c, [&](T v, int64_t k) { return v * ((px[k] - m) * rs); });
    if (dw) dw[c] = (acc_w ? dw[c] : T(0)) + (T)sdyx[c];
    if (db) db[c] = (acc_b ? db[c] : T(0)) + (T)sdy[c];
  }
  if (sync && training) {  // SyncBN: the sums over every process's batch (a collective: before any return)
    std::vector<double> sums(2 * (size_t)C);
    for (int64_t c = 0; c < C; ++c) {
      sums[(size_t)c] = sdy[c];
      sums[(size_t)(C + c)] = sdyx[c];
    }
    sync->sum(sums);
    for (int64_t c = 0; c < C; ++c) {
      sdy[c] = sums[(size_t)c];
      sdyx[c] = sums[(size_t)(C + c)];
    }
    n = count;
  }
  if (!dx) return;
#pragma omp parallel for if (B * C * S > kParallelGrain)
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const int64_t c = bc % C;
    const T m = pm[c], rs = pr[c], wc = w ? w[c] : T(1);
    const T* xr = px + bc * S;
    const T* dyr = pdy + bc * S;
    T* dxr = dx + bc * S;
    if (training) {
      const T a = (T)(wc * sdy[c] / n), bb = (T)(wc * sdyx[c] / n);
      for (int64_t i = 0; i < S; ++i) {
        const T g = math::norm_bwd(dyr[i] * wc, (xr[i] - m) * rs, rs, a, bb);
        dxr[i] = kAccX ? dxr[i] + g : g;
      }
    } else {
      for (int64_t i = 0; i < S; ++i) {
        const T g = dyr[i] * wc * rs;
        dxr[i] = kAccX ? dxr[i] + g : g;
      }
    }
  }
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void layer_norm_forward_cpu(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                            int64_t N, int64_t C, double eps) {
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    if (C == 0) return;
    layer_norm_forward_loop<T>(y.data<T>(), mean.data<T>(), rstd.data<T>(), x.data<T>(), ptr_or_null<T>(w),
                               ptr_or_null<T>(b), N, C, eps);
  });
}

void layer_norm_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                             const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t N, int64_t C) {
  const bool fresh[3] = {dx && !dx.accumulate, dw && !dw.accumulate, db && !db.accumulate};
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    layer_norm_backward_loop<T>(dx.data<T>(), dw.data<T>(), db.data<T>(), dy.data<T>(), x.data<T>(), mean.data<T>(),
                                rstd.data<T>(), ptr_or_null<T>(w), N, C, fresh);
  });
}

void batch_norm_forward_cpu(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                            const Tensor& b, const Tensor& rm, const Tensor& rv, int64_t B, int64_t C, int64_t S,
                            bool training, double momentum, double eps, BatchNormSync* sync, double* count) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    batch_norm_forward_loop<T>(y.data<T>(), mean.data<T>(), rstd.data<T>(), x.data<T>(), ptr_or_null<T>(w),
                               ptr_or_null<T>(b), ptr_or_null<T>(rm), ptr_or_null<T>(rv), B, C, S, training, momentum,
                               eps, sync, count);
  });
}

void batch_norm_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                             const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t B, int64_t C, int64_t S,
                             bool training, BatchNormSync* sync, double count) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto acc_x) {
      batch_norm_backward_loop<T, decltype(acc_x)::value>(dx.data<T>(), dw.data<T>(), db.data<T>(), dy.data<T>(),
                                                          x.data<T>(), mean.data<T>(), rstd.data<T>(),
                                                          ptr_or_null<T>(w), B, C, S, training, dw.accumulate,
                                                          db.accumulate, sync, count);
    };
    if (dx && dx.accumulate) run(std::true_type{});
    else run(std::false_type{});
  });
}

}  // namespace pw
