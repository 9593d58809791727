// Per-element math of the activations, forward and dL/dx, for the CPU loops and
// the CUDA kernels alike (T = float or double). A `_y` suffix means the
// backward takes the output y instead of the input x (cheaper: no re-evaluation).
#pragma once
#include <cmath>

#include "runtime/hd.h"

namespace pw::math {

// NOTE: kink at 0; the gradient there is 0 (PyTorch's convention). nan stays nan.
template <class T> PW_HD inline T relu_fwd(T x) { return x < T(0) ? T(0) : x; }
template <class T> PW_HD inline T relu_bwd(T x, T dy) { return x > T(0) ? dy : T(0); }

// gelu(x) = x * Phi(x), Phi the standard normal CDF (exact, erf form).
template <class T> PW_HD inline T gelu_fwd(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
}
template <class T> PW_HD inline T gelu_bwd(T x, T dy) {
  T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
  T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
  return dy * (cdf + x * pdf);
}

// gelu_tanh(x) = x/2 * (1 + tanh(k (x + c x^3))), k = sqrt(2/pi), c = 0.044715
// (PyTorch's gelu(approximate="tanh")).
template <class T> PW_HD inline T gelu_tanh_fwd(T x) {
  T t = std::tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x));
  return T(0.5) * x * (T(1) + t);
}
template <class T> PW_HD inline T gelu_tanh_bwd(T x, T dy) {
  const T k = T(0.79788456080286535588), c = T(0.044715);
  T t = std::tanh(k * (x + c * x * x * x));
  T dinner = k * (T(1) + T(3) * c * x * x);
  return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
}

// NOTE: for x << 0, exp(-x) overflows to inf and the result is exactly 0, not nan.
template <class T> PW_HD inline T sigmoid_fwd(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <class T> PW_HD inline T sigmoid_bwd_y(T y, T dy) { return dy * y * (T(1) - y); }

// silu(x) = x * sigmoid(x); d/dx = s (1 + x (1 - s)).
template <class T> PW_HD inline T silu_fwd(T x) { return x * sigmoid_fwd(x); }
template <class T> PW_HD inline T silu_bwd(T x, T dy) {
  T s = sigmoid_fwd(x);
  return dy * s * (T(1) + x * (T(1) - s));
}

template <class T> PW_HD inline T tanh_fwd(T x) { return std::tanh(x); }
template <class T> PW_HD inline T tanh_bwd_y(T y, T dy) { return dy * (T(1) - y * y); }

// hardswish(x) = x * relu6(x + 3) / 6.
// NOTE: kinks at -3 and 3; the gradient is 0 below -3, x/3 + 1/2 on [-3, 3]
// (so -1/2 at -3 and 3/2 at 3) and 1 above, as in PyTorch.
template <class T> PW_HD inline T hardswish_fwd(T x) {
  return x <= T(-3) ? T(0) : x >= T(3) ? x : x * (x + T(3)) / T(6);
}
template <class T> PW_HD inline T hardswish_bwd(T x, T dy) {
  return x < T(-3) ? T(0) : x <= T(3) ? dy * (x / T(3) + T(0.5)) : dy;
}

// glu: y = a * sigmoid(b), a and b the two halves of x along one dim.
template <class T> PW_HD inline T glu_fwd(T a, T b) { return a * sigmoid_fwd(b); }
template <class T> PW_HD inline void glu_bwd(T a, T b, T dy, T& da, T& db) {
  T s = sigmoid_fwd(b);
  da = dy * s;
  db = dy * a * s * (T(1) - s);
}

}  // namespace pw::math
