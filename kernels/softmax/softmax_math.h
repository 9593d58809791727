// Per-element math of softmax and log_softmax, forward and dL/dx, for the CPU
// loops and the CUDA kernels alike (T = float or double). The row statistics
// (max, sum of exps, dot products) are reductions and stay per backend.
#pragma once
#include <cmath>

#include "autograd/hd.h"

namespace pw::math {

// y_j = exp(x_j - m) / s with m = max_k x_k, s = sum_k exp(x_k - m): m keeps exp from overflowing.
// Backward from the saved output: dx_j = y_j (dy_j - sum_k dy_k y_k); `dot` = sum_k dy_k y_k.
template <class T> PW_HD inline T softmax_bwd(T y, T dy, T dot) { return y * (dy - dot); }

// y_j = x_j - lse, lse = m + log(s).
// Backward from the saved output: dx_j = dy_j - exp(y_j) sum_k dy_k; `sum_dy` = sum_k dy_k.
template <class T> PW_HD inline T log_softmax_bwd(T y, T dy, T sum_dy) { return dy - std::exp(y) * sum_dy; }

}  // namespace pw::math
