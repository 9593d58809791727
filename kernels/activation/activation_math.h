// Per-element math of the activations, forward and dL/dx, for the CPU loops and
// the CUDA kernels alike (T = float or double).
#pragma once
#include <cmath>

#include "autograd/hd.h"

namespace pw::math {

// gelu(x) = x * Phi(x), Phi the standard normal CDF (exact, erf form).
template <class T> PW_HD inline T gelu_fwd(T x) {
  return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
}
template <class T> PW_HD inline T gelu_bwd(T x, T dy) {
  T cdf = T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
  T pdf = T(0.39894228040143267794) * exp(T(-0.5) * x * x);
  return dy * (cdf + x * pdf);
}

}  // namespace pw::math
