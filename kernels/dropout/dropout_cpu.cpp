// CPU kernels of dropout and drop_path (see dropout_kernels.h).
#include "autograd/dispatch.h"
#include "kernels/dropout/dropout_kernels.h"
#include "kernels/dropout/dropout_math.h"

namespace pw {

namespace {

// y[i] = keep(u_i) ? v[i] * scale : 0, u_i = word i%4 of Philox(seed, base + i/4).   y, v: (n)
// Serves forward (v = x) and backward (y = dx, v = dy); Accumulate: y += r, else y = r.
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

}  // namespace

void dropout_forward_cpu(Tensor& y, const Tensor& x, uint64_t seed, uint64_t base, double p) {
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    dropout_apply_cpu<false>(y.data<T>(), x.data<T>(), x.numel(), seed, base, (float)p, (T)math::dropout_scale(p));
  });
}

void dropout_backward_cpu(GradBuf dx, const Tensor& dy, uint64_t seed, uint64_t base, double p) {
  dispatch_float(dy.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T scale = (T)math::dropout_scale(p);
    if (dx.accumulate) dropout_apply_cpu<true>(dx.data<T>(), dy.data<T>(), dy.numel(), seed, base, (float)p, scale);
    else dropout_apply_cpu<false>(dx.data<T>(), dy.data<T>(), dy.numel(), seed, base, (float)p, scale);
  });
}

namespace {

// y[b, i] (Accumulate: +=, else =) v[b, i] * factor[b].   y, v: (B, M)  factor: (B)
template <bool Accumulate, class T>
void drop_path_apply_cpu(T* y, const T* v, const T* factor, int64_t B, int64_t M) {
#pragma omp parallel for if (B * M > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    const T f = factor[b];
    for (int64_t i = 0; i < M; ++i) {
      if constexpr (Accumulate) y[b * M + i] += v[b * M + i] * f;
      else y[b * M + i] = v[b * M + i] * f;
    }
  }
}

}  // namespace

void drop_path_forward_cpu(Tensor& y, const Tensor& x, const Tensor& factor) {
  dispatch_float(x.dtype(), "drop_path", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = factor.numel(), M = B ? x.numel() / B : 0;
    drop_path_apply_cpu<false>(y.data<T>(), x.data<T>(), factor.data<T>(), B, M);
  });
}

void drop_path_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& factor) {
  dispatch_float(dy.dtype(), "drop_path", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = factor.numel(), M = B ? dy.numel() / B : 0;
    if (dx.accumulate) drop_path_apply_cpu<true>(dx.data<T>(), dy.data<T>(), factor.data<T>(), B, M);
    else drop_path_apply_cpu<false>(dx.data<T>(), dy.data<T>(), factor.data<T>(), B, M);
  });
}

}  // namespace pw
