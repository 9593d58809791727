// The CPU loops and the autograd node shared by every one-input elementwise op
// (the elementwise and activation families). An op is a small struct:
//
//   struct ExpOp {
//     static constexpr const char* kName = "exp";
//     static constexpr bool kFromY = true;        // backward reads y, not x
//     static constexpr UnaryKind kKind = UnaryKind::Exp;  // its CUDA kernel (unary_cuda.h)
//     UnaryParams params() const { return {}; }   // its parameters, for the CUDA kernel
//     template <class T> T fwd(T x) const { return math::exp_fwd(x); }
//     template <class T> T bwd(T y, T dy) const { return math::exp_bwd_y(y, dy); }
//   };
//   Tensor exp(const Tensor& x) { return unary(x, ExpOp{}); }
//
// Parameters (pow's p, clamp's lo and hi) are members of the op struct.
#pragma once
#include <algorithm>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/elementwise/simd_math_cpu.h"
#include "kernels/elementwise/unary_cuda.h"

namespace pw {

// Work is cut into blocks fixed by n, each a `#pragma omp simd` loop, so that
// which elements fall in a vector body or a scalar tail (which may round
// transcendentals differently, see simd_math_cpu.h) never depends on threads.
constexpr int64_t kMapBlock = 4096;

// y[i] = f(x[i]).   x, y: (n)
template <class T, class F>
void map_cpu(T* __restrict y, const T* __restrict x, int64_t n, F f) {
  const int64_t nb = (n + kMapBlock - 1) / kMapBlock;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i1 = std::min(n, (b + 1) * kMapBlock);
#pragma omp simd
    for (int64_t i = b * kMapBlock; i < i1; ++i) y[i] = f(x[i]);
  }
}
// dx[i] += f(s[i], dy[i]) (overwrite: dx[i] = ...), s the saved x or y.   dx, s, dy: (n)
template <class T, class F>
void map_bwd_cpu(T* __restrict dx, const T* s, const T* dy, int64_t n, F f, bool overwrite = false) {
  const int64_t nb = (n + kMapBlock - 1) / kMapBlock;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i0 = b * kMapBlock, i1 = std::min(n, (b + 1) * kMapBlock);
    if (overwrite) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) dx[i] = f(s[i], dy[i]);
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) dx[i] += f(s[i], dy[i]);
    }
  }
}

// y = Op::fwd(x).   x: any shape, y: same shape.
template <class Op>
struct UnaryFn final : Node {
  Op op;
  Tensor saved;  // x, or y.detach() when Op::kFromY
  const char* name() const override { return Op::kName; }
  void backward(const Tensor& dy, Grads& g) override {  // dx += Op::bwd(saved, dy)
    if (!g.needs(0)) return;
    bool fresh = false;
    Tensor& dx = g.out(0, fresh);
    dispatch_float(dy.dtype(), Op::kName, [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          unary_backward_cuda<T>(Op::kKind, op.params(), dx.data<T>(), saved.data<T>(), dy.data<T>(), dy.numel(), fresh);
        return;
      }
      const Op& o = op;
      map_bwd_cpu(dx.data<T>(), saved.data<T>(), dy.data<T>(), dy.numel(),
                  [&o](T s, T d) { return o.template bwd<T>(s, d); }, fresh);
    });
  }
  void release() override { saved = Tensor(); }
};

template <class Op>
Tensor unary(const Tensor& x, const Op& op) {
  Tensor y = empty_like(x);
  dispatch_float(x.dtype(), Op::kName, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) unary_forward_cuda<T>(Op::kKind, op.params(), y.data<T>(), x.data<T>(), x.numel());
      return;
    }
    map_cpu(y.data<T>(), x.data<T>(), x.numel(), [&op](T v) { return op.template fwd<T>(v); });
  });
  if (auto n = record<UnaryFn<Op>>(y, {x})) {
    n->op = op;
    n->saved = Op::kFromY ? y.detach() : x;
  }
  return y;
}

}  // namespace pw
