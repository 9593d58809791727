// The one-input elementwise ops on CUDA: one grid-stride kernel per op kind,
// the formula taken from the family's *_math.h (the CPU's very same code).
#include "kernels/activation/activation_math.h"
#include "runtime/cuda/common.cuh"
#include "kernels/elementwise/elementwise_math.h"
#include "kernels/elementwise/unary_cuda.h"

namespace pw {

namespace {

using K = UnaryKind;

template <K k, class T>
__device__ __forceinline__ T fwd(T x, T a, T b) {
  if constexpr (k == K::AddS) return math::add_fwd(x, a);
  else if constexpr (k == K::MulS) return math::mul_fwd(x, a);
  else if constexpr (k == K::DivS) return math::div_fwd(x, a);
  else if constexpr (k == K::RSubS) return math::rsub_fwd(x, a);
  else if constexpr (k == K::RDivS) return math::rdiv_fwd(x, a);
  else if constexpr (k == K::Neg) return math::neg_fwd(x);
  else if constexpr (k == K::Exp) return math::exp_fwd(x);
  else if constexpr (k == K::Log) return math::log_fwd(x);
  else if constexpr (k == K::Sqrt) return math::sqrt_fwd(x);
  else if constexpr (k == K::Rsqrt) return math::rsqrt_fwd(x);
  else if constexpr (k == K::Abs) return math::abs_fwd(x);
  else if constexpr (k == K::Pow) return math::pow_fwd(x, a);
  else if constexpr (k == K::Clamp) return math::clamp_fwd(x, a, b);
  else if constexpr (k == K::Relu) return math::relu_fwd(x);
  else if constexpr (k == K::Gelu) return math::gelu_fwd(x);
  else if constexpr (k == K::GeluTanh) return math::gelu_tanh_fwd(x);
  else if constexpr (k == K::Silu) return math::silu_fwd(x);
  else if constexpr (k == K::Sigmoid) return math::sigmoid_fwd(x);
  else if constexpr (k == K::Tanh) return math::tanh_fwd(x);
  else return math::hardswish_fwd(x);
}
// s: the saved x, or y where the CPU op has kFromY (exp, sqrt, rsqrt, sigmoid, tanh).
template <K k, class T>
__device__ __forceinline__ T bwd(T s, T dy, T a, T b) {
  if constexpr (k == K::AddS) return dy;
  else if constexpr (k == K::MulS) return math::mul_bwd_a(dy, a);
  else if constexpr (k == K::DivS) return math::div_bwd_a(dy, a);
  else if constexpr (k == K::RSubS) return -dy;
  else if constexpr (k == K::RDivS) return math::rdiv_bwd(s, dy, a);
  else if constexpr (k == K::Neg) return math::neg_bwd(s, dy);
  else if constexpr (k == K::Exp) return math::exp_bwd_y(s, dy);
  else if constexpr (k == K::Log) return math::log_bwd(s, dy);
  else if constexpr (k == K::Sqrt) return math::sqrt_bwd_y(s, dy);
  else if constexpr (k == K::Rsqrt) return math::rsqrt_bwd_y(s, dy);
  else if constexpr (k == K::Abs) return math::abs_bwd(s, dy);
  else if constexpr (k == K::Pow) return math::pow_bwd(s, dy, a);
  else if constexpr (k == K::Clamp) return math::clamp_bwd(s, dy, a, b);
  else if constexpr (k == K::Relu) return math::relu_bwd(s, dy);
  else if constexpr (k == K::Gelu) return math::gelu_bwd(s, dy);
  else if constexpr (k == K::GeluTanh) return math::gelu_tanh_bwd(s, dy);
  else if constexpr (k == K::Silu) return math::silu_bwd(s, dy);
  else if constexpr (k == K::Sigmoid) return math::sigmoid_bwd_y(s, dy);
  else if constexpr (k == K::Tanh) return math::tanh_bwd_y(s, dy);
  else return math::hardswish_bwd(s, dy);
}

// y[i] = fwd(x[i]).   y, x: (n)
template <K k, class T>
__global__ void unary_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n, T a, T b) {
  PW_GRID_STRIDE(i, n) y[i] = fwd<k>(x[i], a, b);
}
// dx[i] (+)= bwd(s[i], dy[i]).   dx, s, dy: (n)
template <K k, class T>
__global__ void unary_bwd_kernel(T* __restrict__ dx, const T* __restrict__ s, const T* __restrict__ dy, int64_t n,
                                 T a, T b, bool overwrite) {
  if (overwrite) {
    PW_GRID_STRIDE(i, n) dx[i] = bwd<k>(s[i], dy[i], a, b);
  } else {
    PW_GRID_STRIDE(i, n) dx[i] += bwd<k>(s[i], dy[i], a, b);
  }
}

// Calls f(integral_constant<UnaryKind, k>) for the runtime kind k.
template <class F>
void with_kind(K k, F&& f) {
  switch (k) {
#define PW_KIND(name) \
  case K::name: f(std::integral_constant<K, K::name>{}); return;
    PW_KIND(AddS) PW_KIND(MulS) PW_KIND(DivS) PW_KIND(RSubS) PW_KIND(RDivS)
    PW_KIND(Neg) PW_KIND(Exp) PW_KIND(Log) PW_KIND(Sqrt) PW_KIND(Rsqrt) PW_KIND(Abs) PW_KIND(Pow) PW_KIND(Clamp)
    PW_KIND(Relu) PW_KIND(Gelu) PW_KIND(GeluTanh) PW_KIND(Silu) PW_KIND(Sigmoid) PW_KIND(Tanh) PW_KIND(Hardswish)
#undef PW_KIND
  }
  PW_FAIL("unary_cuda: unknown op kind ", (int)k);
}

}  // namespace

template <class T> void unary_forward_cuda(UnaryKind k, UnaryParams p, T* y, const T* x, int64_t n) {
  if (n == 0) return;
  with_kind(k, [&](auto kc) {
    unary_fwd_kernel<decltype(kc)::value, T>
        <<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, n, (T)p.a, (T)p.b);
    PW_CUDA_LAUNCH_CHECK();
  });
}
template <class T>
void unary_backward_cuda(UnaryKind k, UnaryParams p, T* dx, const T* s, const T* dy, int64_t n, bool overwrite) {
  if (n == 0) return;
  with_kind(k, [&](auto kc) {
    unary_bwd_kernel<decltype(kc)::value, T>
        <<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dx, s, dy, n, (T)p.a, (T)p.b, overwrite);
    PW_CUDA_LAUNCH_CHECK();
  });
}

template void unary_forward_cuda<float>(UnaryKind, UnaryParams, float*, const float*, int64_t);
template void unary_forward_cuda<double>(UnaryKind, UnaryParams, double*, const double*, int64_t);
template void unary_backward_cuda<float>(UnaryKind, UnaryParams, float*, const float*, const float*, int64_t, bool);
template void unary_backward_cuda<double>(UnaryKind, UnaryParams, double*, const double*, const double*, int64_t,
                                          bool);

}  // namespace pw
