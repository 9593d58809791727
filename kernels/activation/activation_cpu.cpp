#include <cmath>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/activation/activation.h"
#include "kernels/activation/activation_math.h"

namespace pw {

namespace {

// y[i] = f(x[i]) for a per-element functor f.
template <class T, class F>
void map_cpu(T* y, const T* x, int64_t n, F f) {
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
// dx[i] += f(x[i], dy[i]).
template <class T, class F>
void map_bwd_cpu(T* dx, const T* x, const T* dy, int64_t n, F f) {
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += f(x[i], dy[i]);
}

// y = gelu(x).
struct GeluFn final : Node {
  Tensor x;
  const char* name() const override { return "gelu"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(x.dtype(), "gelu", [&](auto tag) {
      using T = decltype(tag);
      map_bwd_cpu(g[0].data<T>(), x.data<T>(), dy.data<T>(), x.numel(), math::gelu_bwd<T>);
    });
  }
};

}  // namespace

Tensor gelu(const Tensor& x) {
  check_cpu("gelu", x);
  Tensor y = empty_like(x);
  dispatch_float(x.dtype(), "gelu", [&](auto tag) {
    using T = decltype(tag);
    map_cpu(y.data<T>(), x.data<T>(), x.numel(), math::gelu_fwd<T>);
  });
  if (auto n = record<GeluFn>(y, {x})) n->x = x;
  return y;
}

}  // namespace pw
