// Per-row math of local_attention_rel (SASA's windowed attention with factorised
// relative embeddings), shared by the CPU loops, the CUDA kernels and the float64
// gradient checks (T = float or double).
//
// Tokens: M = skip + H*W, the `skip` leading ones class tokens, then the patches of an
// H x W grid in raster order. The key set S(i) of query i:
//   a patch query (ri, ci): every class token, and the patches (rj, cj) with
//     |rj - ri| <= r and |cj - ci| <= r (r = K/2), clipped at the border (no padding keys);
//   a class query: every token.
// S is symmetric (j in S(i) iff i in S(j)), so the same walk lists the keys of a query
// and the queries of a key; the CUDA backward uses that for dk, dv.
//
// Logits (scale = 1/sqrt(HD), half = HD/2):
//   l_ij = scale q_i.k_j + rel_i[rj - ri + r] + rel_i[K + cj - ci + r]   (both patches)
//   l_ij = scale q_i.k_j                                               (either a class token)
//   rel_i[t] = scale q_i[:half].row[t],  rel_i[K + t] = scale q_i[half:].col[t]   (2K)
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/softmax/softmax_math.h"  // vexp
#include "runtime/hd.h"

// `#pragma omp simd` on the CPU loops (nvcc compiles the same lines without it).
#if defined(__CUDACC__)
#define PW_LOCAL_SIMD
#else
#define PW_LOCAL_SIMD _Pragma("omp simd")
#endif

namespace pw::math {

// The window of token i: grid rows [r0, r1] and columns [c0, c1], centre (ri, ci).
// A class token (i < skip) spans the whole grid with no relative term (rel false).
struct LocalSpan {
  int64_t r0, r1, c0, c1, ri, ci;
  bool rel;
};

PW_HD inline LocalSpan local_span(int64_t i, int64_t skip, int64_t H, int64_t W, int64_t r) {
  LocalSpan s;
  if (i < skip) {
    s.r0 = 0, s.r1 = H - 1, s.c0 = 0, s.c1 = W - 1, s.ri = 0, s.ci = 0, s.rel = false;
    return s;
  }
  const int64_t p = i - skip;
  s.ri = p / W;
  s.ci = p % W;
  s.r0 = s.ri - r > 0 ? s.ri - r : 0;
  s.r1 = s.ri + r < H - 1 ? s.ri + r : H - 1;
  s.c0 = s.ci - r > 0 ? s.ci - r : 0;
  s.c1 = s.ci + r < W - 1 ? s.ci + r : W - 1;
  s.rel = true;
  return s;
}

// Calls f(j, rel, tr, tc) for every token j of S(i), i the span's centre: the class
// tokens first (rel false), then the window in raster order with tr = rj - ri + r,
// tc = cj - ci + r in [0, K) (rel: both are patches). Seen from a key j, the same call
// lists the queries i of j, and the query's own offsets are K-1-tr, K-1-tc.
template <class F>
PW_HD inline void local_for_each(const LocalSpan& s, int64_t skip, int64_t W, int64_t r, F&& f) {
  for (int64_t j = 0; j < skip; ++j) f(j, false, int64_t(0), int64_t(0));
  for (int64_t rj = s.r0; rj <= s.r1; ++rj)
    for (int64_t cj = s.c0; cj <= s.c1; ++cj) f(skip + rj * W + cj, s.rel, rj - s.ri + r, cj - s.ci + r);
}

template <class T>
PW_HD inline T local_dot(const T* a, const T* b, int64_t n) {
  T acc = 0;
  PW_LOCAL_SIMD
  for (int64_t c = 0; c < n; ++c) acc += a[c] * b[c];
  return acc;
}

// rel (2K) of a query q (HD): rel[t] = scale q[:half].row[t], rel[K+t] = scale q[half:].col[t].
// row, col: (K, half)
template <class T>
PW_HD inline void local_rel_terms(T* rel, const T* q, const T* row, const T* col, int64_t K, int64_t HD, T scale) {
  const int64_t half = HD / 2;
  for (int64_t t = 0; t < K; ++t) {
    rel[t] = scale * local_dot(q, row + t * half, half);
    rel[K + t] = scale * local_dot(q + half, col + t * half, half);
  }
}

// l_ij from qk = q_i.k_j and query i's rel (2K).
template <class T>
PW_HD inline T local_logit(T qk, T scale, bool rel, const T* reli, int64_t tr, int64_t tc, int64_t K) {
  return rel ? scale * qk + (reli[tr] + reli[K + tc]) : scale * qk;
}

// Online softmax: adds key l with value v (HD) to the running max m, sum s and the
// unnormalised output acc (HD, zero before the first key; m starts at -inf).
template <class T>
PW_HD inline void local_online_add(T* acc, T& m, T& s, T l, const T* v, int64_t HD) {
  if (l > m) {
    const T c = vexp(m - l);  // 0 for the first key (m = -inf)
    s *= c;
    PW_LOCAL_SIMD
    for (int64_t e = 0; e < HD; ++e) acc[e] *= c;
    m = l;
  }
  const T p = vexp(l - m);
  s += p;
  PW_LOCAL_SIMD
  for (int64_t e = 0; e < HD; ++e) acc[e] += p * v[e];
}

// exp is vexp (softmax_math.h): the vectorisable one in float, libm's in double.
// Backward of one pair (forward: p_ij = exp(l_ij - lse_i), y_i = sum_j p_ij v_j):
//   p = exp(l - lse);  ds = dL/dl_ij = p (dy_i.v_j - dy_i.y_i)
template <class T>
PW_HD inline T local_prob(T l, T lse) {
  return vexp(l - lse);
}
template <class T>
PW_HD inline T local_ds(T p, T dyv, T dyy) {
  return p * (dyv - dyy);
}

// The relative part of dq_i: dq[:half] += scale sum_t g[t] row[t], dq[half:] += scale
// sum_t g[K+t] col[t], g (2K) the summed ds of query i per row / column offset.
template <class T>
PW_HD inline void local_rel_dq(T* dq, const T* g, const T* row, const T* col, int64_t K, int64_t HD, T scale) {
  const int64_t half = HD / 2;
  for (int64_t t = 0; t < K; ++t) {
    const T gr = scale * g[t], gc = scale * g[K + t];
    const T* rr = row + t * half;
    const T* cc = col + t * half;
    PW_LOCAL_SIMD
    for (int64_t c = 0; c < half; ++c) {
      dq[c] += gr * rr[c];
      dq[half + c] += gc * cc[c];
    }
  }
}

}  // namespace pw::math
