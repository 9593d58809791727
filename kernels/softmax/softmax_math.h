// Per-element math of softmax and log_softmax, forward and dL/dx, for the CPU
// loops and the CUDA kernels alike (T = float or double). The row statistics
// (max, sum of exps, dot products) are reductions and stay per backend.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "runtime/hd.h"

namespace pw::math {

namespace detail {
PW_HD inline int32_t float_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
PW_HD inline float bits_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
// a where mask m is all ones, else b. Bitwise, not `?:`: GCC turns a float `?:` into a
// branch here and then will not vectorise the loop (it may not speculate FP ops that trap).
PW_HD inline float blend(int32_t m, float a, float b) { return bits_float((float_bits(a) & m) | (float_bits(b) & ~m)); }
PW_HD inline int32_t mask(bool c) { return -(int32_t)c; }
}  // namespace detail

// exp for float in straight-line code that the compiler vectorises (glibc's expf
// is a scalar call, ~5x slower): Cephes' expf, e^x = 2^n e^r with n = round(x/ln2),
// |r| <= ln2/2 and a degree-7 polynomial for e^r. Max error 1.4 ulp (tested).
// NOTE: results below e^-88 (denormals) flush to 0; x > ln(FLT_MAX) gives inf; NaN stays NaN.
PW_HD inline float exp_fast(float x) {
  using namespace detail;
  const float lo = -88.0f, hi = 88.72283905f;  // hi = ln(FLT_MAX)
  const int32_t under = mask(x < lo), over = mask(x > hi), nan = mask(x != x);
  float t = blend(under | nan, lo, x);
  t = blend(over, hi, t);
  // round(t * log2(e)) by adding 1.5*2^23: the sum's low mantissa bits then hold n as an
  // integer (0x4B400000 + n), read out without a float->int conversion.
  const float k = t * 1.44269504088896341f + 12582912.0f;
  const float n = k - 12582912.0f;
  float r = t - n * 0.693359375f;  // ln2 split in two so n*ln2 is exact enough
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n for n in [-127, 128] as two in-range powers 2^n1 2^n2 (2^128 alone overflows).
  const int32_t ni = float_bits(k) - 0x4B400000, n1 = ni >> 1, n2 = ni - n1;
  float y = p * bits_float((n1 + 127) << 23) * bits_float((n2 + 127) << 23);
  y = blend(under, 0.0f, y);
  y = blend(over, bits_float(0x7F800000), y);  // +inf (numeric_limits is host-only under nvcc)
  return blend(nan, x, y);
}
// The exp the softmax-shaped loops use: the vectorisable one for float, libm's for double
// (double is the gradient-check dtype, where exp must be exact to the last bits).
PW_HD inline float vexp(float x) { return exp_fast(x); }
PW_HD inline double vexp(double x) { return std::exp(x); }

// y_j = exp(x_j - m) / s with m = max_k x_k, s = sum_k exp(x_k - m): m keeps exp from overflowing.
// Backward from the saved output: dx_j = y_j (dy_j - sum_k dy_k y_k); `dot` = sum_k dy_k y_k.
template <class T> PW_HD inline T softmax_bwd(T y, T dy, T dot) { return y * (dy - dot); }

// y_j = x_j - lse, lse = m + log(s).
// Backward from the saved output: dx_j = dy_j - exp(y_j) sum_k dy_k; `sum_dy` = sum_k dy_k.
template <class T> PW_HD inline T log_softmax_bwd(T y, T dy, T sum_dy) { return dy - vexp(y) * sum_dy; }

}  // namespace pw::math
