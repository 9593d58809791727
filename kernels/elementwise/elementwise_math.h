// Per-element math of the arithmetic ops, forward and dL/d(input), for the CPU
// loops and the CUDA kernels alike (T = float or double).
//
// Naming: <op>_fwd gives y; <op>_bwd* gives the contribution to one input's
// gradient from dy (the caller sums it over broadcast dims). A `_y` suffix
// means the formula takes the op's output y instead of its input x.
#pragma once
#include <cmath>

#include "runtime/hd.h"

namespace pw::math {

// --- binary: y = a op b ---
template <class T> PW_HD inline T add_fwd(T a, T b) { return a + b; }
template <class T> PW_HD inline T sub_fwd(T a, T b) { return a - b; }
template <class T> PW_HD inline T mul_fwd(T a, T b) { return a * b; }
template <class T> PW_HD inline T div_fwd(T a, T b) { return a / b; }
// add: da = dy, db = dy; sub: da = dy, db = -dy (no per-element formula needed).
template <class T> PW_HD inline T mul_bwd_a(T dy, T b) { return dy * b; }  // db: mul_bwd_a(dy, a)
template <class T> PW_HD inline T div_bwd_a(T dy, T b) { return dy / b; }
template <class T> PW_HD inline T div_bwd_b(T dy, T a, T b) { return -dy * a / (b * b); }

// --- scalar: y = x op s, or s op x ---
template <class T> PW_HD inline T rsub_fwd(T x, T s) { return s - x; }  // dx = -dy
template <class T> PW_HD inline T rdiv_fwd(T x, T s) { return s / x; }
template <class T> PW_HD inline T rdiv_bwd(T x, T dy, T s) { return -dy * s / (x * x); }
// add_fwd(x, s): dx = dy; mul_fwd(x, s): dx = dy*s; div_fwd(x, s): dx = dy/s.

// --- unary ---
template <class T> PW_HD inline T neg_fwd(T x) { return -x; }
template <class T> PW_HD inline T neg_bwd(T x, T dy) { return -dy; }

template <class T> PW_HD inline T exp_fwd(T x) { return std::exp(x); }
template <class T> PW_HD inline T exp_bwd_y(T y, T dy) { return dy * y; }

// NOTE: log(0) = -inf and its gradient is inf; log(x < 0) = nan, as in PyTorch.
template <class T> PW_HD inline T log_fwd(T x) { return std::log(x); }
template <class T> PW_HD inline T log_bwd(T x, T dy) { return dy / x; }

// NOTE: the gradient at x = 0 is inf (dy / 0).
template <class T> PW_HD inline T sqrt_fwd(T x) { return std::sqrt(x); }
template <class T> PW_HD inline T sqrt_bwd_y(T y, T dy) { return dy / (T(2) * y); }

// d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3.
template <class T> PW_HD inline T rsqrt_fwd(T x) { return T(1) / std::sqrt(x); }
template <class T> PW_HD inline T rsqrt_bwd_y(T y, T dy) { return T(-0.5) * dy * y * y * y; }

// NOTE: kink at 0; the gradient there is 0 (sign(0) = 0, as in PyTorch).
template <class T> PW_HD inline T abs_fwd(T x) { return std::abs(x); }
template <class T> PW_HD inline T abs_bwd(T x, T dy) {
  return x > T(0) ? dy : x < T(0) ? -dy : T(0);
}

// d/dx x^p = p x^(p-1), defined as 0 for p = 0 (x^0 = 1 everywhere, as in PyTorch).
template <class T> PW_HD inline T pow_fwd(T x, T p) { return std::pow(x, p); }
template <class T> PW_HD inline T pow_bwd(T x, T dy, T p) {
  return p == T(0) ? T(0) : dy * p * std::pow(x, p - T(1));
}

// NOTE: kinks at lo and hi; the gradient passes on the closed interval [lo, hi]
// and is 0 outside (PyTorch's convention). nan stays nan.
template <class T> PW_HD inline T clamp_fwd(T x, T lo, T hi) {
  return x < lo ? lo : x > hi ? hi : x;
}
template <class T> PW_HD inline T clamp_bwd(T x, T dy, T lo, T hi) {
  return x >= lo && x <= hi ? dy : T(0);
}

}  // namespace pw::math
