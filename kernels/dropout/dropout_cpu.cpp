#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/dropout/dropout.h"
#include "kernels/dropout/dropout_cuda.h"
#include "kernels/dropout/dropout_math.h"

namespace pw {

namespace {

// y[i] = keep(u_i) ? v[i] * scale : 0, u_i = word i%4 of Philox(seed, base + i/4).   y, v: (n)
// Serves forward (v = x) and backward (y = dx accumulated, v = dy).
template <bool Accumulate, class T>
void dropout_apply_cpu(T* y, const T* v, int64_t n, uint64_t seed, uint64_t base, float p, T scale) {
  auto put = [&](int64_t i, float u) {
    const T r = math::dropout_apply(v[i], math::dropout_keep(u, p), scale);
    if constexpr (Accumulate) y[i] += r;
    else y[i] = r;
  };
  const int64_t full = n / 4;  // counters serving 4 elements; a last one serves n % 4
#pragma omp parallel for if (n > kParallelGrain / 8)
  for (int64_t j = 0; j < full; ++j) {
    float u[4];
    math::philox_uniform4(seed, base + (uint64_t)j, u);
    for (int k = 0; k < 4; ++k) put(4 * j + k, u[k]);
  }
  if (n % 4) {
    float u[4];
    math::philox_uniform4(seed, base + (uint64_t)full, u);
    for (int64_t i = 4 * full; i < n; ++i) put(i, u[i - 4 * full]);
  }
}

void check_p(const char* op, double p) {
  PW_CHECK(p >= 0.0 && p <= 1.0, op, ": drop probability p must be in [0, 1], got ", p);
}

// y = dropout(x).   x, y: any shape; the mask is re-derived from (seed, base).
struct DropoutFn final : Node {
  uint64_t seed = 0, base = 0;
  double p = 0;
  const char* name() const override { return "dropout"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), "dropout", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          dropout_apply_cuda<true>(g[0].data<T>(), dy.data<T>(), dy.numel(), seed, base, (float)p,
                                   (T)math::dropout_scale(p));
        return;
      }
      dropout_apply_cpu<true>(g[0].data<T>(), dy.data<T>(), dy.numel(), seed, base, (float)p, (T)math::dropout_scale(p));
    });
  }
};

// y[b] = factor[b] * x[b].   x, y: (B, M); factor: (B), each 0 or 1/(1-p).
struct DropPathFn final : Node {
  std::vector<double> factor;
  Tensor factor_cuda;  // (B) in x's dtype, the same factors on CUDA
  const char* name() const override { return "drop_path"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), "drop_path", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        const int64_t B = (int64_t)factor.size(), M = B ? dy.numel() / B : 0;
        if constexpr (kHaveCuda) drop_path_apply_cuda<true>(g[0].data<T>(), dy.data<T>(), factor_cuda.data<T>(), B, M);
        return;
      }
      T* dx = g[0].data<T>();
      const T* pdy = dy.data<T>();
      const int64_t B = (int64_t)factor.size(), M = B ? dy.numel() / B : 0;
#pragma omp parallel for if (B * M > kParallelGrain)
      for (int64_t b = 0; b < B; ++b) {
        const T f = (T)factor[b];
        for (int64_t i = 0; i < M; ++i) dx[b * M + i] += pdy[b * M + i] * f;
      }
    });
  }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* g) {
  check_p("dropout", p);
  if (!training || p == 0.0) return x;
  Generator& gen = g ? *g : default_generator();
  const int64_t n = x.numel();
  const uint64_t base = reserve_counters(gen, (uint64_t)(n + 3) / 4), seed = gen.seed;  // 4 draws per counter
  Tensor y = empty_like(x);
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda)
        dropout_apply_cuda<false>(y.data<T>(), x.data<T>(), n, seed, base, (float)p, (T)math::dropout_scale(p));
      return;
    }
    dropout_apply_cpu<false>(y.data<T>(), x.data<T>(), n, seed, base, (float)p, (T)math::dropout_scale(p));
  });
  if (auto node = record<DropoutFn>(y, {x})) {
    node->seed = seed;
    node->base = base;
    node->p = p;
  }
  return y;
}

Tensor drop_path(const Tensor& x, double p, bool training, Generator* g) {
  check_p("drop_path", p);
  PW_CHECK(x.dim() >= 1, "drop_path: expected an input with a batch dim (B,...), got a 0-d tensor ", x.str());
  if (!training || p == 0.0) return x;
  Generator& gen = g ? *g : default_generator();
  const int64_t B = x.size(0), M = B ? x.numel() / B : 0;
  const uint64_t base = reserve_counters(gen, (uint64_t)B);
  std::vector<double> factor(B);
  for (int64_t b = 0; b < B; ++b)
    factor[b] = math::dropout_keep(philox_uniform(gen.seed, base + (uint64_t)b), (float)p) ? math::dropout_scale(p) : 0.0;
  Tensor y = empty_like(x);
  Tensor factor_cuda;  // the B factors (drawn on the host: B numbers) for the CUDA kernels
  if (x.device() == Device::CUDA) factor_cuda = from_vector(factor, {B}, x.dtype()).to(Device::CUDA);
  dispatch_float(x.dtype(), "drop_path", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) drop_path_apply_cuda<false>(y.data<T>(), x.data<T>(), factor_cuda.data<T>(), B, M);
      return;
    }
    const T* px = x.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (B * M > kParallelGrain)
    for (int64_t b = 0; b < B; ++b) {
      const T f = (T)factor[b];
      for (int64_t i = 0; i < M; ++i) py[b * M + i] = px[b * M + i] * f;
    }
  });
  if (auto node = record<DropPathFn>(y, {x})) {
    node->factor = std::move(factor);
    node->factor_cuda = factor_cuda;
  }
  return y;
}

}  // namespace pw
