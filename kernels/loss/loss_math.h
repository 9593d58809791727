// Per-element math of the classification losses, for the CPU loops and the
// CUDA kernels alike (T = float or double). Row statistics (max, logsumexp)
// are reductions and stay per backend.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

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

// ---- CTC (Graves et al. 2006), in log space, double precision ----
// A sample's extended label sequence l' has L = 2 S + 1 entries: blank, y_1, blank, y_2, ...,
// y_S, blank. alpha_t(s) and beta_t(s) both include the emission lp[t, l'(s)], so the
// paths through (t, s) have log probability alpha_t(s) + beta_t(s) - lp[t, l'(s)].
// -inf marks an unreachable state; +inf is an infeasible sample's loss.
PW_HD inline double ctc_inf() {  // from its bits: numeric_limits is host-only under nvcc
  const int64_t bits = 0x7FF0000000000000LL;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}
PW_HD inline double ctc_neg_inf() { return -ctc_inf(); }
PW_HD inline double ctc_log_add(double a, double b) {
  if (a == ctc_neg_inf()) return b;
  if (b == ctc_neg_inf()) return a;
  const double m = a > b ? a : b, d = a > b ? b - a : a - b;
  return m + std::log1p(std::exp(d));
}
// l'(s): blank on even s, target s/2 on odd s.   tgt: (S) the sample's targets
PW_HD inline int64_t ctc_ext_label(const int64_t* tgt, int64_t s, int64_t blank) {
  return (s & 1) ? tgt[s >> 1] : blank;
}
// alpha_t(s) from the previous row a_prev (L entries); t = 0 when a_prev is null.
//   lp_t: (C) the emissions at t
template <class T>
PW_HD inline double ctc_alpha_at(const double* a_prev, const T* lp_t, const int64_t* tgt, int64_t s, int64_t L,
                                 int64_t blank) {
  const int64_t k = ctc_ext_label(tgt, s, blank);
  double acc;
  if (!a_prev) {
    acc = s < 2 ? 0.0 : ctc_neg_inf();
  } else {
    acc = a_prev[s];
    if (s >= 1) acc = ctc_log_add(acc, a_prev[s - 1]);
    if (s >= 2 && k != blank && k != ctc_ext_label(tgt, s - 2, blank)) acc = ctc_log_add(acc, a_prev[s - 2]);
  }
  return acc == ctc_neg_inf() ? acc : acc + (double)lp_t[k];
}
// beta_t(s) from the next row b_next (L entries); t = T_b - 1 when b_next is null.
template <class T>
PW_HD inline double ctc_beta_at(const double* b_next, const T* lp_t, const int64_t* tgt, int64_t s, int64_t L,
                                int64_t blank) {
  const int64_t k = ctc_ext_label(tgt, s, blank);
  double acc;
  if (!b_next) {
    acc = s >= L - 2 ? 0.0 : ctc_neg_inf();
  } else {
    acc = b_next[s];
    if (s + 1 < L) acc = ctc_log_add(acc, b_next[s + 1]);
    if (s + 2 < L && k != blank && k != ctc_ext_label(tgt, s + 2, blank)) acc = ctc_log_add(acc, b_next[s + 2]);
  }
  return acc == ctc_neg_inf() ? acc : acc + (double)lp_t[k];
}
// d nll / d lp[t, c] = -sum_{s: l'(s) = c} exp(alpha_t(s) + beta_t(s) - lp[t, c] + nll), times g = dy[b].
//   a_t, b_t: (L) this frame's rows; 0 for a label no state at t emits.
template <class T>
PW_HD inline T ctc_grad_at(const double* a_t, const double* b_t, const T* lp_t, const int64_t* tgt, int64_t c,
                           int64_t L, int64_t blank, double nll, double g) {
  double acc = ctc_neg_inf();
  if (c == blank) {
    for (int64_t s = 0; s < L; s += 2) acc = ctc_log_add(acc, a_t[s] + b_t[s]);
  } else {
    for (int64_t s = 1; s < L; s += 2)
      if (tgt[s >> 1] == c) acc = ctc_log_add(acc, a_t[s] + b_t[s]);
  }
  if (acc == ctc_neg_inf()) return T(0);
  return (T)(-g * std::exp(acc - (double)lp_t[c] + nll));
}

}  // namespace pw::math
