// Per-element math of dropout, for the CPU loops and the CUDA kernels alike
// (T = float or double). u is element i's Philox uniform in [0,1).
#pragma once
#include "autograd/hd.h"

namespace pw::math {

// Keep with probability 1 - p (u >= p); a kept element is scaled by 1/(1-p)
// ("inverted" dropout: the expectation of y is x, so eval needs no rescale).
PW_HD inline bool dropout_keep(float u, double p) { return (double)u >= p; }
// The same rule serves forward (v = x) and backward (v = dy): dx = dy * mask * scale.
template <class T> PW_HD inline T dropout_apply(T v, bool keep, T scale) { return keep ? v * scale : T(0); }
// NOTE: p = 1 drops everything; the scale is then 0, not 1/0.
inline double dropout_scale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }

}  // namespace pw::math
