// local_attention_rel on the CPU. Forward: one work item per query row (every row
// of every head), an online softmax over the row's window. Backward: one item per
// (batch, head), which owns that head's dk, dv and its partial drow, dcol (reduced
// over the heads in a fixed order afterwards), so the results do not depend on the
// thread count. Compute only; the op, node and dispatch row are in local_attention.cpp.
#include <omp.h>

#include <algorithm>
#include <cmath>
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

// y, q, k, v: (B,NH,M,HD)  lse: (B,NH,M)  row, col: (K,half)
template <class T>
void forward_rows(T* y, T* lse, const T* q, const T* k, const T* v, const T* row, const T* col,
                  const LocalAttnDims& d) {
  const int64_t M = d.M, HD = d.HD, K = d.K, r = d.r(), rows = d.rows();
  const T scale = T(1.0 / std::sqrt((double)HD));
  const bool spread = !omp_in_parallel() && rows > 1 && rows * row_work(d) > kParallelGrain;
#pragma omp parallel if (spread)
  {
    std::vector<T> rel(2 * K);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const int64_t i = n % M, bh = n / M;
      const T* qi = q + n * HD;
      const T* kb = k + bh * M * HD;
      const T* vb = v + bh * M * HD;
      T* yi = y + n * HD;
      const math::LocalSpan sp = math::local_span(i, d.skip, d.H, d.W, r);
      if (sp.rel) math::local_rel_terms(rel.data(), qi, row, col, K, HD, scale);
      for (int64_t e = 0; e < HD; ++e) yi[e] = T(0);
      T m = -INFINITY, s = 0;
      math::local_for_each(sp, d.skip, d.W, r, [&](int64_t j, bool rl, int64_t tr, int64_t tc) {
        const T l = math::local_logit(math::local_dot(qi, kb + j * HD, HD), scale, rl, rel.data(), tr, tc, K);
        math::local_online_add(yi, m, s, l, vb + j * HD, HD);
      });
      const T inv = T(1) / s;
      for (int64_t e = 0; e < HD; ++e) yi[e] *= inv;
      lse[n] = m + std::log(s);
    }
  }
}

// One head (b,h) of the backward. dq, dk, dv, y, dy: this head's (M,HD) (dq, dk, dv may
// be null); part: this head's (2K,half) partial of [drow; dcol] (null: not needed), zeroed.
// acc_*: add into dq (dk, dv were zeroed or hold earlier gradients: always added to).
template <class T>
void backward_head(T* dq, bool acc_q, T* dk, T* dv, T* part, const T* q, const T* k, const T* v, const T* row,
                   const T* col, const T* y, const T* lse, const T* dy, const LocalAttnDims& d, T* rel, T* g, T* dqi) {
  const int64_t M = d.M, HD = d.HD, K = d.K, r = d.r(), half = d.half();
  const T scale = T(1.0 / std::sqrt((double)HD));
  for (int64_t i = 0; i < M; ++i) {
    const T* qi = q + i * HD;
    const T* dyi = dy + i * HD;
    const math::LocalSpan sp = math::local_span(i, d.skip, d.H, d.W, r);
    if (sp.rel) math::local_rel_terms(rel, qi, row, col, K, HD, scale);
    const T dyy = math::local_dot(dyi, y + i * HD, HD), lsei = lse[i];
    for (int64_t t = 0; t < 2 * K; ++t) g[t] = T(0);
    for (int64_t e = 0; e < HD; ++e) dqi[e] = T(0);
    math::local_for_each(sp, d.skip, d.W, r, [&](int64_t j, bool rl, int64_t tr, int64_t tc) {
      const T* kj = k + j * HD;
      const T p = math::local_prob(math::local_logit(math::local_dot(qi, kj, HD), scale, rl, rel, tr, tc, K), lsei);
      const T ds = math::local_ds(p, math::local_dot(dyi, v + j * HD, HD), dyy), sds = scale * ds;
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
        PW_LOCAL_SIMD
        for (int64_t e = 0; e < HD; ++e) dvj[e] += p * dyi[e];
      }
      if (rl) {
        g[tr] += ds;
        g[K + tc] += ds;
      }
    });
    if (dq) {
      if (sp.rel) math::local_rel_dq(dqi, g, row, col, K, HD, scale);
      T* o = dq + i * HD;
      for (int64_t e = 0; e < HD; ++e) o[e] = acc_q ? o[e] + dqi[e] : dqi[e];
    }
    if (part && sp.rel)
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
    forward_rows<T>(y.data<T>(), s.lse.data<T>(), s.q.data<T>(), s.k.data<T>(), s.v.data<T>(), s.row.data<T>(),
                    s.col.data<T>(), d);
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
      std::vector<T> rel(2 * K), g(2 * K), dqi(d.HD);
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t o = it * MH;
        if (pdk && !acc_k)
          for (int64_t e = 0; e < MH; ++e) pdk[o + e] = T(0);
        if (pdv && !acc_v)
          for (int64_t e = 0; e < MH; ++e) pdv[o + e] = T(0);
        backward_head<T>(pdq ? pdq + o : nullptr, dq.accumulate, pdk ? pdk + o : nullptr, pdv ? pdv + o : nullptr,
                         rel_grad ? part.data() + it * P : nullptr, q + o, k + o, v + o, s.row.data<T>(),
                         s.col.data<T>(), y + o, lse + it * d.M, g_dy + o, d, rel.data(), g.data(), dqi.data());
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
