// CPU kernels of the classification losses: compute only; the ops, nodes and
// dispatch rows are in loss.cpp.
#include <cmath>
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/loss/loss_kernels.h"
#include "kernels/loss/loss_math.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

namespace {

// logsumexp of one row of C logits, with the max subtracted so exp cannot overflow.
template <class T>
double row_lse(const T* x, int64_t C) {
  const T m = detail::row_max(x, C);
  return (double)m + std::log(detail::lane_sum(C, [&](int64_t c) { return math::vexp(x[c] - m); }));
}

// Sum of per-row losses in row order, divided by B: the mean never depends on the threads.
inline double ordered_mean(const std::vector<double>& rows) {
  double s = 0;
  for (double r : rows) s += r;
  return s / (double)rows.size();  // NOTE: B = 0 gives NaN, as torch's mean reduction does
}

// y = mean_b ce(x[b], t[b]).   x: (B,C)  t, lse: (B)  y: ()
template <class T>
void ce_forward_loop(T* y, double* lse, const T* x, const int64_t* t, int64_t B, int64_t C, double eps) {
  std::vector<double> rows(B);
#pragma omp parallel for if (B * C > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    const T* xr = x + b * C;
    lse[b] = row_lse(xr, C);
    const double mean_x = eps > 0 ? detail::lane_sum(C, [&](int64_t c) { return xr[c]; }) / (double)C : 0.0;
    rows[b] = math::ce_row_loss<double>(lse[b], (double)xr[t[b]], mean_x, eps);
  }
  y[0] = (T)ordered_mean(rows);
}

// dx[b,c] (+)= dy/B * (softmax[b,c] - (1-eps)[c == t_b] - eps/C); kAcc: add, else write.
// dx, x: (B,C)  t, lse: (B)
template <class T, bool kAcc>
void ce_backward_loop(T* dx, T dy, const T* x, const int64_t* t, const double* lse, int64_t B, int64_t C,
                      double eps) {
  const T scale = dy / (T)B, e_c = (T)(eps / (double)C);
#pragma omp parallel for if (B * C > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    const T l = (T)lse[b];
    const T* xr = x + b * C;
    T* dxr = dx + b * C;
    // One write per element (a second backward adds exactly the same values), so the
    // target's term joins its own element rather than a second pass.
    const int64_t tb = t[b];
    for (int64_t c = 0; c < tb; ++c) {
      const T g = math::ce_bwd(xr[c], l, e_c, scale);
      dxr[c] = kAcc ? dxr[c] + g : g;
    }
    const T gt = math::ce_bwd(xr[tb], l, e_c, scale) + math::ce_bwd_target((T)eps, scale);
    dxr[tb] = kAcc ? dxr[tb] + gt : gt;
    for (int64_t c = tb + 1; c < C; ++c) {
      const T g = math::ce_bwd(xr[c], l, e_c, scale);
      dxr[c] = kAcc ? dxr[c] + g : g;
    }
  }
}

// y = mean_b sum_c q[b,c] (lse_b - x[b,c]).   x, q: (B,C)  lse, sum_q: (B)  y: ()
template <class T>
void soft_ce_forward_loop(T* y, double* lse, double* sum_q, const T* x, const T* q, int64_t B, int64_t C) {
  std::vector<double> rows(B);
#pragma omp parallel for if (B * C > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    const T* xr = x + b * C;
    const T* qr = q + b * C;
    lse[b] = row_lse(xr, C);
    sum_q[b] = detail::lane_sum(C, [&](int64_t c) { return qr[c]; });
    const double l = lse[b];
    // sum_c q_c (lse - x_c), not S lse - sum_c q_c x_c: no cancellation between large terms.
    rows[b] = detail::lane_sum(C, [&](int64_t c) { return (double)qr[c] * (l - (double)xr[c]); });
  }
  y[0] = (T)ordered_mean(rows);
}

// dx[b,c] (+)= dy/B (S_b p[b,c] - q[b,c]);  dq[b,c] (+)= dy/B (lse_b - x[b,c]); each may be null.
// acc_x, acc_q: add, else write.   dx, dq, x, q: (B,C)  lse, sum_q: (B)
template <class T>
void soft_ce_backward_loop(T* dx, T* dq, T dy, const T* x, const T* pq, const double* lse, const double* sum_q,
                           int64_t B, int64_t C, bool acc_x, bool acc_q) {
  const T scale = dy / (T)B;
#pragma omp parallel for if (B * C > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    const T l = (T)lse[b], s = (T)sum_q[b];
    const int64_t r = b * C;
    if (dx) {
      if (acc_x)
        for (int64_t c = 0; c < C; ++c) dx[r + c] += math::soft_ce_dx(x[r + c], pq[r + c], l, s, scale);
      else
        for (int64_t c = 0; c < C; ++c) dx[r + c] = math::soft_ce_dx(x[r + c], pq[r + c], l, s, scale);
    }
    if (dq) {
      if (acc_q)
        for (int64_t c = 0; c < C; ++c) dq[r + c] += math::soft_ce_dq(x[r + c], l, scale);
      else
        for (int64_t c = 0; c < C; ++c) dq[r + c] = math::soft_ce_dq(x[r + c], l, scale);
    }
  }
}

}  // namespace

void cross_entropy_forward_cpu(Tensor& y, Tensor& lse, const Tensor& x, const Tensor& t, int64_t B, int64_t C,
                               double eps) {
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    ce_forward_loop<T>(y.data<T>(), lse.data<double>(), x.data<T>(), t.data<int64_t>(), B, C, eps);
  });
}

void cross_entropy_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& x, const Tensor& t, const Tensor& lse,
                                int64_t B, int64_t C, double eps) {
  dispatch_float(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T g = dy.data<T>()[0];
    if (dx.accumulate) ce_backward_loop<T, true>(dx.data<T>(), g, x.data<T>(), t.data<int64_t>(), lse.data<double>(), B, C, eps);
    else ce_backward_loop<T, false>(dx.data<T>(), g, x.data<T>(), t.data<int64_t>(), lse.data<double>(), B, C, eps);
  });
}

void cross_entropy_soft_forward_cpu(Tensor& y, Tensor& lse, Tensor& sum_q, const Tensor& x, const Tensor& q,
                                    int64_t B, int64_t C) {
  dispatch_float(x.dtype(), "cross_entropy_soft", [&](auto tag) {
    using T = decltype(tag);
    soft_ce_forward_loop<T>(y.data<T>(), lse.data<double>(), sum_q.data<double>(), x.data<T>(), q.data<T>(), B, C);
  });
}

void cross_entropy_soft_backward_cpu(GradBuf dx, GradBuf dq, const Tensor& dy, const Tensor& x, const Tensor& q,
                                     const Tensor& lse, const Tensor& sum_q, int64_t B, int64_t C) {
  dispatch_float(x.dtype(), "cross_entropy_soft", [&](auto tag) {
    using T = decltype(tag);
    soft_ce_backward_loop<T>(dx.data<T>(), dq.data<T>(), dy.data<T>()[0], x.data<T>(), q.data<T>(),
                             lse.data<double>(), sum_q.data<double>(), B, C, dx.accumulate, dq.accumulate);
  });
}

// ---- CTC ----

namespace {

// One sample's forward variables.   lp: (T,C)  tgt: (S)  alpha: (T, Lw) rows of width Lw >= L
template <class T>
double ctc_sample_forward(double* alpha, const T* lp, const int64_t* tgt, int64_t Tb, int64_t L, int64_t Lw,
                          int64_t C, int64_t blank) {
  if (Tb == 0) return L == 1 ? 0.0 : math::ctc_inf();
  for (int64_t t = 0; t < Tb; ++t)
    for (int64_t s = 0; s < L; ++s)
      alpha[t * Lw + s] = math::ctc_alpha_at(t ? alpha + (t - 1) * Lw : nullptr, lp + t * C, tgt, s, L, blank);
  const double* last = alpha + (Tb - 1) * Lw;
  return -(L > 1 ? math::ctc_log_add(last[L - 1], last[L - 2]) : last[0]);
}

}  // namespace

void ctc_forward_cpu(Tensor& y, Tensor& nll, Tensor& alpha, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                     const Tensor& tgt_len, int64_t blank, bool zero_inf) {
  dispatch_float(lp.dtype(), "ctc_loss", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = lp.size(0), TT = lp.size(1), C = lp.size(2), S = tgt.size(1), Lw = 2 * S + 1;
    const T* x = lp.data<T>();
    const int64_t *tg = tgt.data<int64_t>(), *il = in_len.data<int64_t>(), *tl = tgt_len.data<int64_t>();
    double* a = alpha.data<double>();
    double* n = nll.data<double>();
    T* yy = y.data<T>();
#pragma omp parallel for if (B * TT * Lw > kParallelGrain)
    for (int64_t b = 0; b < B; ++b) {
      double v = ctc_sample_forward(a + b * TT * Lw, x + b * TT * C, tg + b * S, il[b], 2 * tl[b] + 1, Lw, C, blank);
      n[b] = v;
      yy[b] = (T)(zero_inf && v == math::ctc_inf() ? 0.0 : v);
    }
  });
}

void ctc_backward_cpu(GradBuf dlp, const Tensor& dy, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                      const Tensor& tgt_len, const Tensor& alpha, const Tensor& nll, int64_t blank) {
  dispatch_float(lp.dtype(), "ctc_loss", [&](auto tag) {
    using T = decltype(tag);
    const int64_t B = lp.size(0), TT = lp.size(1), C = lp.size(2), S = tgt.size(1), Lw = 2 * S + 1;
    const T* x = lp.data<T>();
    const T* g = dy.data<T>();
    const int64_t *tg = tgt.data<int64_t>(), *il = in_len.data<int64_t>(), *tl = tgt_len.data<int64_t>();
    const double* a = alpha.data<double>();
    const double* n = nll.data<double>();
    T* d = dlp.data<T>();
    const bool acc = dlp.accumulate;
#pragma omp parallel for if (B * TT * Lw > kParallelGrain)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t Tb = il[b], L = 2 * tl[b] + 1;
      const bool finite = n[b] != math::ctc_inf();
      std::vector<double> beta(finite ? Tb * L : 0);
      if (finite)
        for (int64_t t = Tb - 1; t >= 0; --t)
          for (int64_t s = 0; s < L; ++s)
            beta[t * L + s] = math::ctc_beta_at(t + 1 < Tb ? &beta[(t + 1) * L] : nullptr, x + (b * TT + t) * C,
                                                tg + b * S, s, L, blank);
      for (int64_t t = 0; t < TT; ++t)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t k = (b * TT + t) * C + c;
          const T v = finite && t < Tb ? math::ctc_grad_at(a + (b * TT + t) * Lw, &beta[t * L], x + (b * TT + t) * C,
                                                           tg + b * S, c, L, blank, n[b], (double)g[b])
                                       : T(0);
          d[k] = acc ? d[k] + v : v;
        }
    }
  });
}

}  // namespace pw
