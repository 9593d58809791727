// Per-element math of the classification losses, for the CPU loops and the
// CUDA kernels alike (T = float or double). Row statistics (max, logsumexp)
// are reductions and stay per backend.
#pragma once
#include <cmath>

#include "runtime/hd.h"
#include "kernels/softmax/softmax_math.h"

namespace pw::math {

// Cross entropy of one row with label smoothing eps (torch semantics): the
// target distribution is (1-eps) one_hot(t) + eps/C, so with lse = logsumexp(x)
//   loss = (1-eps) (lse - x_t) + eps (lse - mean_c x_c).
template <class T> PW_HD inline T ce_row_loss(T lse, T x_t, T mean_x, T eps) {
  return (T(1) - eps) * (lse - x_t) + eps * (lse - mean_x);
}
// dloss/dx_c = p_c - eps/C - (1-eps)[c == t], p = softmax(x) = exp(x - lse); all scaled by dy/B.
// Split in two so the loop over c has no branch: ce_bwd for every c, plus ce_bwd_target at c = t.
template <class T> PW_HD inline T ce_bwd(T x, T lse, T eps_over_c, T scale) {
  return scale * (vexp(x - lse) - eps_over_c);
}
template <class T> PW_HD inline T ce_bwd_target(T eps, T scale) { return -scale * (T(1) - eps); }

// Soft-target cross entropy of one row: loss = -sum_c q_c log_softmax(x)_c = S lse - sum_c q_c x_c,
// S = sum_c q_c (1 for a distribution; kept general so the gradient is exact for any q).
// dloss/dx_c = S p_c - q_c;  dloss/dq_c = lse - x_c.  Both scaled by dy/B.
template <class T> PW_HD inline T soft_ce_dx(T x, T q, T lse, T sum_q, T scale) {
  return scale * (sum_q * vexp(x - lse) - q);
}
template <class T> PW_HD inline T soft_ce_dq(T x, T lse, T scale) { return scale * (lse - x); }

}  // namespace pw::math
