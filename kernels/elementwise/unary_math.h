// The one-input elementwise ops (the elementwise family's scalar and unary ops
// and the activations relu ... hardswish) as one kind-indexed formula, for the
// CPU loops and the CUDA kernels alike (T = float or double). Each public op
// has its own dispatch row; they share one kernel pair that takes the kind
// (kernels/elementwise/unary.h).
#pragma once
#include <type_traits>

#include "kernels/activation/activation_math.h"
#include "kernels/elementwise/elementwise_math.h"
#include "runtime/check.h"
#include "runtime/hd.h"

namespace pw {

enum class UnaryKind : int {
  AddS, MulS, DivS, RSubS, RDivS,                           // with a scalar a
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Pow, Clamp,               // pow: a = p; clamp: a = lo, b = hi
  Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh, Hardswish,      // activations
};
// An op's parameters (the scalar, pow's p, clamp's lo and hi), converted to T in the kernels.
struct UnaryParams {
  double a = 0, b = 0;
};

// The op's name, for errors and the graph node ("add" for x + s).
inline const char* unary_name(UnaryKind k) {
  constexpr const char* names[] = {"add", "mul", "div", "rsub", "rdiv", "neg", "exp", "log", "sqrt", "rsqrt",
                                   "abs", "pow", "clamp", "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh",
                                   "hardswish"};
  return names[(int)k];
}
// Whether the backward reads the output y instead of the input x (cheaper: no re-evaluation).
constexpr bool unary_saves_y(UnaryKind k) {
  return k == UnaryKind::Exp || k == UnaryKind::Sqrt || k == UnaryKind::Rsqrt || k == UnaryKind::Sigmoid ||
         k == UnaryKind::Tanh;
}

namespace math {

// y = op(x).   a, b: the op's parameters as T
template <UnaryKind k, class T>
PW_HD inline T unary_fwd(T x, T a, T b) {
  using K = UnaryKind;
  if constexpr (k == K::AddS) return add_fwd(x, a);
  else if constexpr (k == K::MulS) return mul_fwd(x, a);
  else if constexpr (k == K::DivS) return div_fwd(x, a);
  else if constexpr (k == K::RSubS) return rsub_fwd(x, a);
  else if constexpr (k == K::RDivS) return rdiv_fwd(x, a);
  else if constexpr (k == K::Neg) return neg_fwd(x);
  else if constexpr (k == K::Exp) return exp_fwd(x);
  else if constexpr (k == K::Log) return log_fwd(x);
  else if constexpr (k == K::Sqrt) return sqrt_fwd(x);
  else if constexpr (k == K::Rsqrt) return rsqrt_fwd(x);
  else if constexpr (k == K::Abs) return abs_fwd(x);
  else if constexpr (k == K::Pow) return pow_fwd(x, a);
  else if constexpr (k == K::Clamp) return clamp_fwd(x, a, b);
  else if constexpr (k == K::Relu) return relu_fwd(x);
  else if constexpr (k == K::Gelu) return gelu_fwd(x);
  else if constexpr (k == K::GeluTanh) return gelu_tanh_fwd(x);
  else if constexpr (k == K::Silu) return silu_fwd(x);
  else if constexpr (k == K::Sigmoid) return sigmoid_fwd(x);
  else if constexpr (k == K::Tanh) return tanh_fwd(x);
  else return hardswish_fwd(x);
}
// dL/dx from dy; s is the saved x, or y where unary_saves_y(k).
template <UnaryKind k, class T>
PW_HD inline T unary_bwd(T s, T dy, T a, T b) {
  using K = UnaryKind;
  if constexpr (k == K::AddS) return dy;
  else if constexpr (k == K::MulS) return mul_bwd_a(dy, a);
  else if constexpr (k == K::DivS) return div_bwd_a(dy, a);
  else if constexpr (k == K::RSubS) return -dy;
  else if constexpr (k == K::RDivS) return rdiv_bwd(s, dy, a);
  else if constexpr (k == K::Neg) return neg_bwd(s, dy);
  else if constexpr (k == K::Exp) return exp_bwd_y(s, dy);
  else if constexpr (k == K::Log) return log_bwd(s, dy);
  else if constexpr (k == K::Sqrt) return sqrt_bwd_y(s, dy);
  else if constexpr (k == K::Rsqrt) return rsqrt_bwd_y(s, dy);
  else if constexpr (k == K::Abs) return abs_bwd(s, dy);
  else if constexpr (k == K::Pow) return pow_bwd(s, dy, a);
  else if constexpr (k == K::Clamp) return clamp_bwd(s, dy, a, b);
  else if constexpr (k == K::Relu) return relu_bwd(s, dy);
  else if constexpr (k == K::Gelu) return gelu_bwd(s, dy);
  else if constexpr (k == K::GeluTanh) return gelu_tanh_bwd(s, dy);
  else if constexpr (k == K::Silu) return silu_bwd(s, dy);
  else if constexpr (k == K::Sigmoid) return sigmoid_bwd_y(s, dy);
  else if constexpr (k == K::Tanh) return tanh_bwd_y(s, dy);
  else return hardswish_bwd(s, dy);
}

}  // namespace math

// Calls f(std::integral_constant<UnaryKind, k>) for the runtime kind k (host code).
template <class F>
void with_unary_kind(UnaryKind k, F&& f) {
  using K = UnaryKind;
  switch (k) {
#define PW_KIND(name) \
  case K::name: f(std::integral_constant<K, K::name>{}); return;
    PW_KIND(AddS) PW_KIND(MulS) PW_KIND(DivS) PW_KIND(RSubS) PW_KIND(RDivS)
    PW_KIND(Neg) PW_KIND(Exp) PW_KIND(Log) PW_KIND(Sqrt) PW_KIND(Rsqrt) PW_KIND(Abs) PW_KIND(Pow) PW_KIND(Clamp)
    PW_KIND(Relu) PW_KIND(Gelu) PW_KIND(GeluTanh) PW_KIND(Silu) PW_KIND(Sigmoid) PW_KIND(Tanh) PW_KIND(Hardswish)
#undef PW_KIND
  }
  PW_FAIL("unary op: unknown kind ", (int)k);
}

}  // namespace pw
