// local_attention_rel on the CPU. Forward: one work item per query row (every row
// of every head): the window's logits, then a two-pass softmax (max, vectorised exp). Backward: one item per
// (batch, head), which owns that head's dk, dv and its partial drow, dcol (reduced
// over the heads in a fixed order afterwards), so the results do not depend on the
// thread count. Compute only; the op, node and dispatch row are in local_attention.cpp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/profile.h"
#include "kernels/local_attention/local_attention_kernels.h"
#include "kernels/local_attention/local_attention_math.h"

namespace pw {

namespace {

// Multiply-adds of one row: about (skip + K^2) keys of 2 HD each.
int64_t row_work(const LocalAttnDims& d) { return (d.skip + d.K * d.K) * 2 * d.HD; }

// The (query, key) pairs of one head: the class queries read every key, a patch query
// the class tokens and its clipped window (rows and columns apart: a product).
int64_t pairs_per_head(const LocalAttnDims& d) {
  auto span = [&](int64_t n) {  // sum over the centres c of the clipped window's width
    int64_t s = 0;
    for (int64_t c = 0; c < n; ++c) s += std::min(n - 1, c + d.r()) - std::max<int64_t>(0, c - d.r()) + 1;
    return s;
  };
  return d.skip * d.M + d.H * d.W * d.skip + span(d.H) * span(d.W);
}

// Calls f(std::integral_constant<int, HD>) for the common head widths (the per-key
// loops then have a fixed trip count the compiler unrolls), else with 0 (HD at run time).
template <class F>
void with_head_dim(int64_t HD, F&& f) {
  switch (HD) {
    case 8: f(std::integral_constant<int, 8>{}); return;
    case 16: f(std::integral_constant<int, 16>{}); return;
    case 32: f(std::integral_constant<int, 32>{}); return;
    case 64: f(std::integral_constant<int, 64>{}); return;
    default: f(std::integral_constant<int, 0>{}); return;
  }
}

// Per-thread scratch of one query row: its keys and their logits / probabilities.
template <class T>
struct RowScratch {
  std::vector<int64_t> key;      // the keys of the row, in local_for_each's order
  std::vector<int64_t> tr, tc;   // their row / column offsets, -1 for a class pair
  std::vector<T> l, p, rel, g, dq;
  explicit RowScratch(const LocalAttnDims& d)
      : key(d.M), tr(d.M), tc(d.M), l(d.M), p(d.M), rel(2 * d.K), g(2 * d.K), dq(d.HD) {}
};

// Fills x.key, x.tr, x.tc, x.l with the keys of query row qi (token i of its head; kb: the
// head's keys (M,HD)) and their logits; returns their count.
template <class T, int kHD>
int64_t row_logits(RowScratch<T>& x, int64_t i, const T* qi, const T* kb, const T* row, const T* col,
                   const LocalAttnDims& d, T scale) {
  const int64_t HD = kHD > 0 ? kHD : d.HD, K = d.K, r = d.r();
  const math::LocalSpan sp = math::local_span(i, d.skip, d.H, d.W, r);
  if (sp.rel) math::local_rel_terms(x.rel.data(), qi, row, col, K, HD, scale);
  int64_t n = 0;
  math::local_for_each(sp, d.skip, d.W, r, [&](int64_t j, bool rl, int64_t tr, int64_t tc) {
    x.key[n] = j;
    x.tr[n] = rl ? tr : -1;
    x.tc[n] = tc;
    x.l[n++] = math::local_logit(math::local_dot(qi, kb + j * HD, HD), scale, rl, x.rel.data(), tr, tc, K);
  });
  return n;
}

// y, q, k, v: (B,NH,M,HD)  lse: (B,NH,M)  row, col: (K,half)
// Per row: the window's logits, their max, exp (vectorised), then y = sum_j p_j v_j / s.
template <class T, int kHD>
void forward_rows(T* y, T* lse, const T* q, const T* k, const T* v, const T* row, const T* col,
                  const LocalAttnDims& d) {
  const int64_t M = d.M, HD = kHD > 0 ? kHD : d.HD, rows = d.rows();
  const T scale = T(1.0 / std::sqrt((double)HD));
  const bool spread = !omp_in_parallel() && rows > 1 && rows * row_work(d) > kParallelGrain;
#pragma omp parallel if (spread)
  {
    RowScratch<T> x(d);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const int64_t bh = n / M;
      const T* vb = v + bh * M * HD;
      const int64_t nk = row_logits<T, kHD>(x, n % M, q + n * HD, k + bh * M * HD, row, col, d, scale);
      T m = x.l[0];
      for (int64_t t = 1; t < nk; ++t) m = x.l[t] > m ? x.l[t] : m;
      T s = 0;
      T* p = x.p.data();
      const T* l = x.l.data();
      PW_LOCAL_SIMD
      for (int64_t t = 0; t < nk; ++t) p[t] = math::vexp(l[t] - m);
      for (int64_t t = 0; t < nk; ++t) s += p[t];
      const T inv = T(1) / s;
      T* yi = y + n * HD;
      for (int64_t e = 0; e < HD; ++e) yi[e] = T(0);
      for (int64_t t = 0; t < nk; ++t) {
        const T pt = p[t] * inv;
        const T* vj = vb + x.key[t] * HD;
        PW_LOCAL_SIMD
        for (int64_t e = 0; e < HD; ++e) yi[e] += pt * vj[e];
      }
      lse[n] = m + std::log(s);
    }
  }
}

// One head (b,h) of the backward. dq, dk, dv, y, dy: this head's (M,HD) (dq, dk, dv may
// be null); part: this head's (2K,half) partial of [drow; dcol] (null: not needed), zeroed.
// acc_q: add into dq (dk, dv were zeroed or hold earlier gradients: always added to).
template <class T, int kHD>
void backward_head(T* dq, bool acc_q, T* dk, T* dv, T* part, const T* q, const T* k, const T* v, const T* row,
                   const T* col, const T* y, const T* lse, const T* dy, const LocalAttnDims& d, RowScratch<T>& x) {
  const int64_t M = d.M, HD = kHD > 0 ? kHD : d.HD, K = d.K, half = HD / 2;
  const T scale = T(1.0 / std::sqrt((double)HD));
  T* g = x.g.data();
  T* dqi = x.dq.data();
  for (int64_t i = 0; i < M; ++i) {
    const T* qi = q + i * HD;
    const T* dyi = dy + i * HD;
    const int64_t nk = row_logits<T, kHD>(x, i, qi, k, row, col, d, scale);
    const T dyy = math::local_dot(dyi, y + i * HD, HD), lsei = lse[i];
    T* p = x.p.data();
    const T* l = x.l.data();
    PW_LOCAL_SIMD
    for (int64_t t = 0; t < nk; ++t) p[t] = math::local_prob(l[t], lsei);
    for (int64_t t = 0; t < 2 * K; ++t) g[t] = T(0);
    for (int64_t e = 0; e < HD; ++e) dqi[e] = T(0);
    for (int64_t t = 0; t < nk; ++t) {
      const int64_t j = x.key[t];
      const T* kj = k + j * HD;
      const T ds = math::local_ds(p[t], math::local_dot(dyi, v + j * HD, HD), dyy), sds = scale * ds;
      if (dq) {
        PW_LOCAL_SIMD
        for (int64_t e = 0; e < HD; ++e) dqi[e] += sds * kj[e];
      }
      if (dk) {
        T* dkj = dk + j * HD;
        PW_LOCAL_SIMD
        for (int64_t e = 0; e < HD; ++e) dkj[e] += sds * qi[e];
      }
      if (dv) {
        T* dvj = dv + j * HD;
        const T pt = p[t];
        PW_LOCAL_SIMD
        for (int64_t e = 0; e < HD; ++e) dvj[e] += pt * dyi[e];
      }
      if (x.tr[t] >= 0) {
        g[x.tr[t]] += ds;
        g[K + x.tc[t]] += ds;
      }
    }
    const bool rel = i >= d.skip;
    if (dq) {
      if (rel) math::local_rel_dq(dqi, g, row, col, K, HD, scale);
      T* o = dq + i * HD;
      for (int64_t e = 0; e < HD; ++e) o[e] = acc_q ? o[e] + dqi[e] : dqi[e];
    }
    if (part && rel)
      for (int64_t t = 0; t < K; ++t) {
        const T gr = scale * g[t], gc = scale * g[K + t];
        T* pr = part + t * half;
        T* pc = part + (K + t) * half;
        PW_LOCAL_SIMD
        for (int64_t c = 0; c < half; ++c) {
          pr[c] += gr * qi[c];
          pc[c] += gc * qi[half + c];
        }
      }
  }
}

}  // namespace

void local_attention_forward_cpu(Tensor& y, LocalAttnSaved& s) {
  const LocalAttnDims& d = s.d;
  s.lse = empty({d.B, d.NH, d.M}, s.q.dtype(), Device::CPU);
  // q.k and p v per pair, the rel terms per patch query (as attention_qkv: 4 N^2 HD)
  count_flops(d.B * d.NH * (4 * d.HD * pairs_per_head(d) + 2 * d.K * d.HD * d.H * d.W));
  dispatch_float(s.q.dtype(), d.op, [&](auto tag) {
    using T = decltype(tag);
    with_head_dim(d.HD, [&](auto hd) {
      forward_rows<T, decltype(hd)::value>(y.data<T>(), s.lse.data<T>(), s.q.data<T>(), s.k.data<T>(), s.v.data<T>(),
                                           s.row.data<T>(), s.col.data<T>(), d);
    });
  });
}

void local_attention_backward_cpu(GradBuf dq, GradBuf dk, GradBuf dv, GradBuf drow, GradBuf dcol, const Tensor& dy,
                                  const LocalAttnSaved& s) {
  const LocalAttnDims& d = s.d;
  const int64_t items = d.B * d.NH, MH = d.M * d.HD, K = d.K, half = d.half(), P = 2 * K * half;
  const bool rel_grad = drow || dcol;
  dispatch_float(s.q.dtype(), d.op, [&](auto tag) {
    using T = decltype(tag);
    const T* q = s.q.data<T>();
    const T* k = s.k.data<T>();
    const T* v = s.v.data<T>();
    const T* y = s.y.data<T>();
    const T* lse = s.lse.data<T>();
    const T* g_dy = dy.data<T>();
    T* pdq = dq.data<T>();
    T* pdk = dk.data<T>();
    T* pdv = dv.data<T>();
    const bool acc_k = dk.accumulate, acc_v = dv.accumulate;
    std::vector<T> part(rel_grad ? items * P : 0, T(0));  // per head: [drow; dcol] (2K,half)
    const bool spread = !omp_in_parallel() && items > 1 && items * d.M * row_work(d) * 2 > kParallelGrain;
#pragma omp parallel if (spread)
    {
      RowScratch<T> x(d);
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t o = it * MH;
        if (pdk && !acc_k)
          for (int64_t e = 0; e < MH; ++e) pdk[o + e] = T(0);
        if (pdv && !acc_v)
          for (int64_t e = 0; e < MH; ++e) pdv[o + e] = T(0);
        with_head_dim(d.HD, [&](auto hd) {
          backward_head<T, decltype(hd)::value>(pdq ? pdq + o : nullptr, dq.accumulate, pdk ? pdk + o : nullptr, pdv ? pdv + o : nullptr,
                         rel_grad ? part.data() + it * P : nullptr, q + o, k + o, v + o, s.row.data<T>(),
                         s.col.data<T>(), y + o, lse + it * d.M, g_dy + o, d, x);
        });
      }
    }
    // [drow; dcol] = the heads' partials summed in head order
    for (int which = 0; which < 2; ++which) {
      GradBuf& gb = which == 0 ? drow : dcol;
      if (!gb) continue;
      T* out = gb.data<T>();
      for (int64_t e = 0; e < K * half; ++e) {
        T acc = 0;
        for (int64_t it = 0; it < items; ++it) acc += part[it * P + which * K * half + e];
        out[e] = gb.accumulate ? out[e] + acc : acc;
      }
    }
  });
}

}  // namespace pw
