// Per-element math of the reductions, forward and dL/dx, for the CPU loops and
// the CUDA kernels alike (T = float or double).
#pragma once
#include <cmath>

#include "runtime/hd.h"

namespace pw::math {

// var = sum_i (x_i - mean)^2 / (n - correction)
// dL/dx_i = dy * 2 (x_i - mean) / (n - correction); `scale` = 2 / (n - correction).
// (The mean's own dependence on x_i cancels: sum_i (x_i - mean) = 0.)
template <class T> PW_HD inline T var_bwd(T x, T mean, T dy, T scale) { return dy * scale * (x - mean); }

// Running argmax step: does v replace the current best? The first maximum wins
// ties, and a NaN wins over any number (max propagates NaN, as torch does).
template <class T> PW_HD inline bool max_takes(T v, T best) { return v > best || (v != v && best == best); }

}  // namespace pw::math
