// Per-element math of dropout, for the CPU loops and the CUDA kernels alike
// (float and double). u is an element's Philox uniform in [0,1).
#pragma once
#include <cstdint>
#include <cstring>

#include "runtime/hd.h"
#include "autograd/philox.h"

namespace pw::math {

// Philox4x32-10 of counter `ctr` under key `seed`, all four words, each as a
// float in [0,1) from its top 24 bits. Word 0 is exactly pw::philox_uniform(seed, ctr)
// (autograd/tensor.cpp; tests/test_dropout.cpp checks the two agree bit for bit).
// Dropout uses all four words, element i taking word i%4 of counter base + i/4:
// a quarter of the rounds, and an inline loop the compiler vectorises.
PW_HD inline void philox_uniform4(uint64_t seed, uint64_t ctr, float u[4]) {
  uint32_t c[4];
  philox4x32(seed, ctr, c);
  const uint32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  const float s = 1.0f / 16777216.0f;
  u[0] = (float)(c0 >> 8) * s;
  u[1] = (float)(c1 >> 8) * s;
  u[2] = (float)(c2 >> 8) * s;
  u[3] = (float)(c3 >> 8) * s;
}

// Keep with probability 1 - p (u >= p); a kept element is scaled by 1/(1-p)
// ("inverted" dropout: the expectation of y is x, so eval needs no rescale).
// p is compared as a float: u has 24-bit resolution anyway.
PW_HD inline bool dropout_keep(float u, float p) { return u >= p; }
// The same rule serves forward (v = x) and backward (v = dy): dx = dy * mask * scale.
// The float form masks scale's bits (0 or scale) instead of `keep ? v*scale : 0`:
// GCC turns a bool select into a branch, and then the Philox loop does not vectorise.
// (As in torch's x * mask, a dropped inf or NaN gives NaN.)
PW_HD inline float dropout_apply(float v, bool keep, float scale) {
  uint32_t bits;
  std::memcpy(&bits, &scale, sizeof bits);
  bits &= 0u - (uint32_t)keep;
  float s;
  std::memcpy(&s, &bits, sizeof s);
  return v * s;
}
PW_HD inline double dropout_apply(double v, bool keep, double scale) { return v * (keep ? scale : 0.0); }
// NOTE: p = 1 drops everything; the scale is then 0, not 1/0.
PW_HD inline double dropout_scale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }

}  // namespace pw::math
