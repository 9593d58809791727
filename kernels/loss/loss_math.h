// Per-element math of the classification losses, for the CPU loops and the
// CUDA kernels alike (T = float or double). Row statistics (max, logsumexp)
// are reductions and stay per backend.
#pragma once
#include <cmath>

#include "autograd/hd.h"

namespace pw::math {

// Cross entropy of one row with label smoothing eps (torch semantics): the
// target distribution is (1-eps) one_hot(t) + eps/C, so with lse = logsumexp(x)
//   loss = (1-eps) (lse - x_t) + eps (lse - mean_c x_c).
template <class T> PW_HD inline T ce_row_loss(T lse, T x_t, T mean_x, T eps) {
  return (T(1) - eps) * (lse - x_t) + eps * (lse - mean_x);
}
// dloss/dx_c = p_c - (1-eps)[c == t] - eps/C, p = softmax(x) = exp(x - lse); scaled by dy/B.
template <class T> PW_HD inline T ce_bwd(T x, T lse, bool is_target, T eps, T inv_c, T scale) {
  return scale * (std::exp(x - lse) - (is_target ? T(1) - eps : T(0)) - eps * inv_c);
}

// Soft-target cross entropy of one row: loss = -sum_c q_c log_softmax(x)_c = S lse - sum_c q_c x_c,
// S = sum_c q_c (1 for a distribution; kept general so the gradient is exact for any q).
// dloss/dx_c = S p_c - q_c;  dloss/dq_c = lse - x_c.  Both scaled by dy/B.
template <class T> PW_HD inline T soft_ce_dx(T x, T q, T lse, T sum_q, T scale) {
  return scale * (sum_q * std::exp(x - lse) - q);
}
template <class T> PW_HD inline T soft_ce_dq(T x, T lse, T scale) { return scale * (lse - x); }

}  // namespace pw::math
