#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/norm/norm.h"
#include "kernels/norm/norm_cuda.h"
#include "kernels/norm/norm_math.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

namespace {

using detail::lane_sum;
using detail::short_sum;

// Checks an optional per-channel parameter: undefined, or (C) with x's dtype.
void check_param(const char* op, const char* what, const Tensor& p, const Tensor& x, int64_t C) {
  if (!p.defined()) return;
  check_same_device(op, x, p);
  PW_CHECK(p.dim() == 1 && p.size(0) == C, op, ": ", what, " ", p.str(), " must have shape (C) = [", C,
           "] for input ", x.str());
  check_same_dtype(op, x, p);
}

// ---------------------------------------------------------------- layer_norm

// y = (x - mean) * rstd * w + b per row.   x, y: (N,C)  w, b: (C) or null  mean, rstd: (N)
template <class T>
void layer_norm_forward_cpu(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t N, int64_t C,
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
// dx += norm_bwd(...) per row;  dw += sum_rows dy * xhat;  db += sum_rows dy.
// fresh[i]: that buffer is new and uninitialised, so it is written (=), not added to.
template <class T>
void layer_norm_backward_cpu(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
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

// y = layer_norm(x, weight, bias).   x: (N,C)  weight, bias: (C) or undefined  mean, rstd: (N)
struct LayerNormFn final : Node {
  Tensor x, weight, mean, rstd;
  const char* name() const override { return "layer_norm"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (dy.device() == Device::CUDA) {  // accumulates into the engine's zeroed buffers
      dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
        using T = decltype(tag);
        const int64_t C = x.size(-1), N = C ? x.numel() / C : 0;
        auto ptr = [&](size_t i) { return g.needs(i) ? g[i].data<T>() : nullptr; };
        if constexpr (kHaveCuda)
          layer_norm_backward_cuda<T>(ptr(0), ptr(1), ptr(2), dy.data<T>(), x.data<T>(), mean.data<T>(),
                                      rstd.data<T>(), weight.defined() ? weight.data<T>() : nullptr, N, C);
      });
      return;
    }
    bool fresh[3] = {false, false, false};
    Tensor* d[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < 3; ++i)
      if (g.needs(i)) d[i] = &g.out(i, fresh[i]);
    dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
      using T = decltype(tag);
      const int64_t C = x.size(-1), N = C ? x.numel() / C : 0;
      auto ptr = [&](int i) { return d[i] ? d[i]->data<T>() : nullptr; };
      layer_norm_backward_cpu<T>(ptr(0), ptr(1), ptr(2), dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(),
                                 weight.defined() ? weight.data<T>() : nullptr, N, C, fresh);
    });
  }
  void release() override { x = weight = mean = rstd = Tensor(); }
};

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

// y = batch_norm(x, weight, bias).   x: (B,C,S)  weight, bias: (C) or undefined  mean, rstd: (C)
// training: mean/rstd are the batch statistics (gradient flows through them);
// eval: they came from the running statistics (constants).
struct BatchNormFn final : Node {
  Tensor x, weight, mean, rstd;
  int64_t B = 0, C = 0, S = 0;
  bool training = true;
  const char* name() const override { return "batch_norm"; }
  void backward(const Tensor& dy, Grads& g) override {
    dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        Tensor sums = empty({2 * C}, DType::F64, Device::CUDA);  // per channel: sum dy, sum dy * xhat
        auto ptr = [&](size_t i) { return g.needs(i) ? g[i].data<T>() : nullptr; };
        if constexpr (kHaveCuda)
          batch_norm_backward_cuda<T>(ptr(0), ptr(1), ptr(2), sums.data<double>(), dy.data<T>(), x.data<T>(),
                                      mean.data<T>(), rstd.data<T>(), weight.defined() ? weight.data<T>() : nullptr,
                                      B, C, S, training);
        return;
      }
      const T* px = x.data<T>();
      const T* pdy = dy.data<T>();
      const T* pm = mean.data<T>();
      const T* pr = rstd.data<T>();
      const T* w = weight.defined() ? weight.data<T>() : nullptr;
      T* dx = g.needs(0) ? g[0].data<T>() : nullptr;
      T* dw = g.needs(1) ? g[1].data<T>() : nullptr;
      T* db = g.needs(2) ? g[2].data<T>() : nullptr;
      const double n = (double)(B * S);
      // Per channel: sdy = sum dy, sdyx = sum dy * xhat (over B and S).
      std::vector<double> sdy(C), sdyx(C);
#pragma omp parallel for if (B * C * S > kParallelGrain)
      for (int64_t c = 0; c < C; ++c) {
        const T m = pm[c], rs = pr[c];
        sdy[c] = channel_sum(pdy, B, C, S, c, [](T v, int64_t) { return v; });
        sdyx[c] = channel_sum(pdy, B, C, S, c, [&](T v, int64_t k) { return v * ((px[k] - m) * rs); });
        if (dw) dw[c] += (T)sdyx[c];
        if (db) db[c] += (T)sdy[c];
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
          for (int64_t i = 0; i < S; ++i) dxr[i] += math::norm_bwd(dyr[i] * wc, (xr[i] - m) * rs, rs, a, bb);
        } else {
          for (int64_t i = 0; i < S; ++i) dxr[i] += dyr[i] * wc * rs;
        }
      }
    });
  }
  void release() override { x = weight = mean = rstd = Tensor(); }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  PW_CHECK(x.dim() >= 1, op, ": expected an input of shape (...,C), got a 0-d tensor ", x.str());
  const int64_t C = x.size(-1), N = C ? x.numel() / C : 0;
  check_param(op, "weight", weight, x, C);
  check_param(op, "bias", bias, x, C);
  PW_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Shape rows(x.shape().begin(), x.shape().end() - 1);
  Tensor y = empty_like(x), mean = empty(rows, x.dtype(), x.device()), rstd = empty(rows, x.dtype(), x.device());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (C == 0) return;
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda)
        layer_norm_forward_cuda<T>(y.data<T>(), mean.data<T>(), rstd.data<T>(), x.data<T>(),
                                   weight.defined() ? weight.data<T>() : nullptr,
                                   bias.defined() ? bias.data<T>() : nullptr, N, C, eps);
      return;
    }
    layer_norm_forward_cpu<T>(y.data<T>(), mean.data<T>(), rstd.data<T>(), x.data<T>(),
                              weight.defined() ? weight.data<T>() : nullptr, bias.defined() ? bias.data<T>() : nullptr,
                              N, C, eps);
  });
  if (auto n = record<LayerNormFn>(y, {x, weight, bias})) {
    n->x = x;
    n->weight = weight;
    n->mean = mean;
    n->rstd = rstd;
  }
  return y;
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  PW_CHECK(x.dim() >= 2 && x.dim() <= 4, op, ": expected an input of shape (B,C), (B,C,L) or (B,C,H,W), got ",
           x.str());
  const int64_t B = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(B * C, 1);
  check_param(op, "weight", weight, x, C);
  check_param(op, "bias", bias, x, C);
  check_param(op, "running_mean", running_mean, x, C);
  check_param(op, "running_var", running_var, x, C);
  PW_CHECK(running_mean.defined() == running_var.defined(), op,
           ": running_mean and running_var must both be given or both be undefined, got ", running_mean.str(),
           " and ", running_var.str());
  PW_CHECK(training || running_mean.defined(), op,
           ": eval mode (training=false) normalises with the running statistics, but none were given for input ",
           x.str());
  PW_CHECK(!training || B * S > 1, op, ": training needs more than 1 value per channel to estimate a variance, got input ",
           x.str());
  PW_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Tensor y = empty_like(x), mean = empty({C}, x.dtype(), x.device()), rstd = empty({C}, x.dtype(), x.device());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
      if constexpr (kHaveCuda) {
        batch_norm_stats_cuda<T>(mean.data<T>(), rstd.data<T>(), ptr(running_mean), ptr(running_var), x.data<T>(),
                                 B, C, S, training, momentum, eps);
        batch_norm_apply_cuda<T>(y.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(), ptr(weight), ptr(bias), B,
                                 C, S);
      }
      return;
    }
    const T* px = x.data<T>();
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
    if (training) {
      const double n = (double)(B * S);
      T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
      T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
#pragma omp parallel for if (B * C * S > kParallelGrain)
      for (int64_t c = 0; c < C; ++c) {
        const double m = channel_sum(px, B, C, S, c, [](T v, int64_t) { return v; }) / n;
        const double ss = channel_sum(px, B, C, S, c, [&](T v, int64_t) { double d = v - m; return d * d; });
        pm[c] = (T)m;
        pr[c] = (T)math::norm_rstd(ss / n, eps);  // biased variance normalises
        if (rm) {
          rm[c] = (T)math::running_update((double)rm[c], m, momentum);
          rv[c] = (T)math::running_update((double)rv[c], ss / (n - 1), momentum);  // unbiased is tracked
        }
      }
    } else {
      const T* rm = running_mean.data<T>();
      const T* rv = running_var.data<T>();
      for (int64_t c = 0; c < C; ++c) {
        pm[c] = rm[c];
        pr[c] = (T)math::norm_rstd((double)rv[c], eps);
      }
    }
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
#pragma omp parallel for if (B * C * S > kParallelGrain)
    for (int64_t bc = 0; bc < B * C; ++bc) {
      const int64_t c = bc % C;
      const T m = pm[c], rs = pr[c], wc = w ? w[c] : T(1), bc_ = b ? b[c] : T(0);
      const T* xr = px + bc * S;
      T* yr = py + bc * S;
      for (int64_t i = 0; i < S; ++i) yr[i] = math::norm_fwd(xr[i], m, rs, wc, bc_);
    }
  });
  if (auto n = record<BatchNormFn>(y, {x, weight, bias})) {
    n->x = x;
    n->weight = weight;
    n->mean = mean;
    n->rstd = rstd;
    n->B = B;
    n->C = C;
    n->S = S;
    n->training = training;
  }
  return y;
}

}  // namespace pw
