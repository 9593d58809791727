// linear_attention_qkv on the CPU: one work item per (batch, head). Non-causal: a few
// GEMMs per head (the state S1 = phi(K)^T [V, 1], F x E, then phi(Q) S1) around row
// loops for the feature maps and the normaliser. Causal: one pass over the tokens
// that adds key i to the running state, then reads query i (prefix sums). Compute
// only; the op, node and dispatch row are in linear_attention.cpp.
// NOTE: the float32 GEMMs (dnnl_sgemm) may split the long N dimension between threads,
// so float32 results can differ in the last bits between thread counts (as softmax
// attention's); the causal loops never do.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/profile.h"
#include "kernels/gemm/gemm.h"
#include "kernels/linear_attention/linear_attention_kernels.h"
#include "kernels/linear_attention/linear_attention_math.h"

namespace pw {

namespace {

// Runs body(item) for item = b*NH + h over every (batch, head), spread over the
// threads when there is enough work.
// The causal loops are single-threaded, so they always spread; the GEMM path spreads
// only with at least one item per thread, else runs the items in order and lets each
// GEMM thread itself.
template <class F>
void for_each_head(const LinAttnDims& d, F body) {
  const int64_t items = d.B * d.NH;
  const bool spread = !omp_in_parallel() && items > 1 && items * d.N * d.F() * d.E() > kParallelGrain &&
                      (d.causal || items >= omp_get_max_threads());
#pragma omp parallel for schedule(static) if (spread)
  for (int64_t it = 0; it < items; ++it) body(it);
}

// S (F,E) += a [v, 1]^T for one key: a = phi(k) (F), v (HD).
template <class T>
inline void add_outer(T* S, const T* a, const T* v, int64_t F, int64_t HD) {
  const int64_t E = HD + 1;
  for (int64_t f = 0; f < F; ++f) {
    const T af = a[f];
    T* row = S + f * E;
#pragma omp simd
    for (int64_t e = 0; e < HD; ++e) row[e] += af * v[e];
    row[HD] += af;
  }
}

// S (F,E) += a g^T for a (F), g (E).
template <class T>
inline void add_outer_g(T* S, const T* a, const T* g, int64_t F, int64_t E) {
  for (int64_t f = 0; f < F; ++f) {
    const T af = a[f];
    T* row = S + f * E;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) row[e] += af * g[e];
  }
}

// out (E) = a^T S for a (F), S (F,E).
template <class T>
inline void row_times(T* out, const T* a, const T* S, int64_t F, int64_t E) {
  std::fill(out, out + E, T(0));
  for (int64_t f = 0; f < F; ++f) {
    const T af = a[f];
    const T* row = S + f * E;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) out[e] += af * row[e];
  }
}

// y_i = nd_i[:HD] / den_i (den saved) from phi(q_i) and the state S (F,E).
template <class T>
inline void emit_row(T* y, T* den, T* nd, const T* phi, const T* S, int64_t F, int64_t HD) {
  row_times(nd, phi, S, F, HD + 1);
  const T dn = math::lin_den(nd, HD), inv = T(1) / dn;
  *den = dn;
  for (int64_t e = 0; e < HD; ++e) y[e] = nd[e] * inv;
}

// y: (B,N,NH,HD)  qkv: (B,N,3,NH,HD)  mask: (B,N) or null
// state: (B,NH,F,E) S1 per head (non-causal; null when causal)  den: (B,NH,N)
template <class T>
void forward_loop(T* y, T* state, T* den, const T* qkv, const T* mask, const LinAttnDims& d) {
  const int64_t N = d.N, HD = d.HD, F = d.F(), E = d.E(), ld = d.ld(), D = d.D();
  count_flops(4 * d.B * d.NH * N * F * E);
  for_each_head(d, [&](int64_t it) {
    thread_local std::vector<T> buf;  // phi (F), nd (E), the causal state (F,E)
    buf.resize(F + E + (d.causal ? F * E : 0));
    T* phi = buf.data();
    T* nd = phi + F;
    const int64_t b = it / d.NH, h = it % d.NH;
    const T* q = qkv + d.q_off(b, h);
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* yt = y + d.y_off(b, h);
    T* dn = den + it * N;
    auto m = [&](int64_t j) { return mask ? mask[b * N + j] : T(1); };
    if (d.causal) {
      T* S = nd + E;
      std::fill(S, S + F * E, T(0));
      for (int64_t i = 0; i < N; ++i) {
        math::lin_phi_fwd(phi, k + i * ld, HD, d.fm, m(i));
        add_outer(S, phi, v + i * ld, F, HD);
        math::lin_phi_fwd(phi, q + i * ld, HD, d.fm, T(1));
        emit_row(yt + i * D, dn + i, nd, phi, S, F, HD);
      }
      return;
    }
    // non-causal: S1[:, :HD] = phi(K)^T V and S1[:, HD] = phi(K)^T 1, then y = phi(Q) S1[:, :HD] / den
    thread_local std::vector<T> pbuf;  // phi(K), then phi(Q): (N,F)
    pbuf.resize(N * F);
    T* P = pbuf.data();
    T* S = state + it * F * E;
    for (int64_t j = 0; j < N; ++j) math::lin_phi_fwd(P + j * F, k + j * ld, HD, d.fm, m(j));
    gemm(true, false, F, HD, N, T(1), P, F, v, ld, T(0), S, E);
    for (int64_t f = 0; f < F; ++f) S[f * E + HD] = T(0);
    for (int64_t j = 0; j < N; ++j)
      for (int64_t f = 0; f < F; ++f) S[f * E + HD] += P[j * F + f];
    for (int64_t i = 0; i < N; ++i) math::lin_phi_fwd(P + i * F, q + i * ld, HD, d.fm, T(1));
    gemm(false, false, N, HD, F, T(1), P, F, S, E, T(0), yt, D);
    for (int64_t i = 0; i < N; ++i) {
      const T* pq = P + i * F;
      T z = 0;
      for (int64_t f = 0; f < F; ++f) z += pq[f] * S[f * E + HD];
      const T dni = z + T(math::kLinAttnEps), inv = T(1) / dni;
      dn[i] = dni;
      T* yi = yt + i * D;
      for (int64_t e = 0; e < HD; ++e) yi[e] *= inv;
    }
  });
}

// Non-causal backward of one head: the steps of backward_loop below, batched over the
// rows into GEMMs.   G (N,E) = dL/dnd, Tm (N,F), dS1 (F,E):
//   G[:, :HD] = dY / den;  Tm = G[:, :HD] S1[:, :HD]^T;  G[:, HD] = -rowsum(phi(Q) * Tm) / den
//   dphi(Q) = Tm + G[:, HD] S1[:, HD]^T;  dS1 = phi(Q)^T G
//   dphi(K) = V dS1[:, :HD]^T + 1 dS1[:, HD]^T;  dV (+)= phi(K) dS1[:, :HD]
// dq: the head's q rows in dqkv (k, v at +D, +2D), q: in qkv, row stride ld  dyt: row stride D
// S: (F,E)  dn: (N)  mask_b: (N) or null
template <class T>
void backward_head_gemm(T* dq, const T* q, const T* dyt, const T* S, const T* dn, const T* mask_b,
                        const LinAttnDims& d, bool acc) {
  const int64_t N = d.N, HD = d.HD, F = d.F(), E = d.E(), ld = d.ld(), D = d.D();
  thread_local std::vector<T> buf;
  buf.resize(2 * N * F + N * E + F * E);
  T* P = buf.data();   // phi(Q), then phi(K): (N,F)
  T* Tm = P + N * F;   // Tm, then dphi(Q), then dphi(K): (N,F)
  T* G = Tm + N * F;   // (N,E)
  T* dS = G + N * E;   // (F,E)
  const T* k = q + D;
  const T* v = q + 2 * D;
  T* dk = dq + D;
  T* dv = dq + 2 * D;
  for (int64_t i = 0; i < N; ++i) {
    math::lin_phi_fwd(P + i * F, q + i * ld, HD, d.fm, T(1));
    const T inv = T(1) / dn[i];
    for (int64_t e = 0; e < HD; ++e) G[i * E + e] = dyt[i * D + e] * inv;
  }
  gemm(false, true, N, F, HD, T(1), G, E, S, E, T(0), Tm, F);
  for (int64_t i = 0; i < N; ++i) {
    T* ti = Tm + i * F;
    const T* pq = P + i * F;
    T s = 0;
    for (int64_t f = 0; f < F; ++f) s += pq[f] * ti[f];
    const T gh = -s / dn[i];
    G[i * E + HD] = gh;
    for (int64_t f = 0; f < F; ++f) ti[f] += S[f * E + HD] * gh;
    math::lin_phi_bwd(dq + i * ld, q + i * ld, ti, HD, d.fm, T(1), acc);
  }
  gemm(true, false, F, E, N, T(1), P, F, G, E, T(0), dS, E);
  for (int64_t j = 0; j < N; ++j) math::lin_phi_fwd(P + j * F, k + j * ld, HD, d.fm, mask_b ? mask_b[j] : T(1));
  gemm(false, true, N, F, HD, T(1), v, ld, dS, E, T(0), Tm, F);
  for (int64_t j = 0; j < N; ++j) {
    T* tj = Tm + j * F;
    for (int64_t f = 0; f < F; ++f) tj[f] += dS[f * E + HD];
    math::lin_phi_bwd(dk + j * ld, k + j * ld, tj, HD, d.fm, mask_b ? mask_b[j] : T(1), acc);
  }
  gemm(false, false, N, HD, F, T(1), P, F, dS, E, acc ? T(1) : T(0), dv, ld);
}

// Forward was y_i = nd_i[:HD] / den_i (linear_attention_kernels.h). Per head (the causal path; the
// non-causal one is backward_head_gemm):
//   1. queries in order (causal: rebuilding the prefix state S_i): g_i = [dy_i/den_i,
//      -(dy_i.y_i)/den_i], with dy_i.y_i = phi(q_i).t, t = S_i[:, :HD] dy_i / den_i;
//      dphi(q_i) = t + S_i[:, HD] g_i[HD]; dq_i (+)= its vector-Jacobian product;
//      phi(q_i) and g_i kept for step 2 (non-causal: dS1 summed here instead).
//   2. keys (causal: in reverse, dS1 a suffix sum over i >= j): dphi(k_j) = dS1 [v_j, 1],
//      dv_j (+)= (dS1^T phi(k_j))[:HD], dk_j (+)= its vector-Jacobian product.
// Every row of dq, dk, dv is written once (or added to when acc).
// dqkv, qkv: (B,N,3,NH,HD)  dy: (B,N,NH,HD)  mask: (B,N) or null  state: (B,NH,F,E) or null  den: (B,NH,N)
template <class T>
void backward_loop(T* dqkv, const T* dy, const T* qkv, const T* mask, const T* state, const T* den,
                   const LinAttnDims& d, bool acc) {
  const int64_t N = d.N, HD = d.HD, F = d.F(), E = d.E(), ld = d.ld(), D = d.D();
  count_flops(8 * d.B * d.NH * N * F * E);
  for_each_head(d, [&](int64_t it) {
    if (!d.causal) {
      const int64_t b = it / d.NH, h = it % d.NH;
      backward_head_gemm(dqkv + d.q_off(b, h), qkv + d.q_off(b, h), dy + d.y_off(b, h), state + it * F * E,
                         den + it * N, mask ? mask + b * N : nullptr, d, acc);
      return;
    }
    // phi (F), dphi (F), t (F), g (E), dv (E), dS (F,E), S (F,E) causal only, and
    // causal only: phi(q) (N,F) and g (N,E) of every query for the reverse pass.
    thread_local std::vector<T> buf;
    buf.resize(3 * F + 2 * E + F * E + (d.causal ? F * E + N * (F + E) : 0));
    T* phi = buf.data();
    T* dphi = phi + F;
    T* t = dphi + F;
    T* g = t + F;
    T* dvr = g + E;
    T* dS = dvr + E;
    T* S = d.causal ? dS + F * E : nullptr;
    T* phiq_all = d.causal ? S + F * E : nullptr;
    T* g_all = d.causal ? phiq_all + N * F : nullptr;
    const int64_t b = it / d.NH, h = it % d.NH;
    const T* q = qkv + d.q_off(b, h);
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* dq = dqkv + d.q_off(b, h);
    T* dk = dq + D;
    T* dv = dq + 2 * D;
    const T* dyt = dy + d.y_off(b, h);
    const T* dn = den + it * N;
    auto m = [&](int64_t j) { return mask ? mask[b * N + j] : T(1); };
    std::fill(dS, dS + F * E, T(0));
    if (d.causal) std::fill(S, S + F * E, T(0));
    const T* Sx = d.causal ? S : state + it * F * E;
    // 1. queries
    for (int64_t i = 0; i < N; ++i) {
      if (d.causal) {
        math::lin_phi_fwd(phi, k + i * ld, HD, d.fm, m(i));
        add_outer(S, phi, v + i * ld, F, HD);
      }
      T* pq = d.causal ? phiq_all + i * F : phi;
      T* gi = d.causal ? g_all + i * E : g;
      math::lin_phi_fwd(pq, q + i * ld, HD, d.fm, T(1));
      const T inv = T(1) / dn[i];
      const T* dyi = dyt + i * D;
      for (int64_t e = 0; e < HD; ++e) gi[e] = dyi[e] * inv;
      T s = 0;
      for (int64_t f = 0; f < F; ++f) {
        const T* row = Sx + f * E;
        T a = 0;
#pragma omp simd reduction(+ : a)
        for (int64_t e = 0; e < HD; ++e) a += row[e] * gi[e];
        t[f] = a;
        s += pq[f] * a;
      }
      gi[HD] = -s * inv;
      for (int64_t f = 0; f < F; ++f) dphi[f] = t[f] + Sx[f * E + HD] * gi[HD];
      math::lin_phi_bwd(dq + i * ld, q + i * ld, dphi, HD, d.fm, T(1), acc);
      if (!d.causal) add_outer_g(dS, pq, gi, F, E);
    }
    // 2. keys
    for (int64_t jj = 0; jj < N; ++jj) {
      const int64_t j = d.causal ? N - 1 - jj : jj;
      if (d.causal) add_outer_g(dS, phiq_all + j * F, g_all + j * E, F, E);
      const T mj = m(j);
      math::lin_phi_fwd(phi, k + j * ld, HD, d.fm, mj);
      const T* vj = v + j * ld;
      for (int64_t f = 0; f < F; ++f) {
        const T* row = dS + f * E;
        T a = row[HD];
#pragma omp simd reduction(+ : a)
        for (int64_t e = 0; e < HD; ++e) a += row[e] * vj[e];
        dphi[f] = a;
      }
      row_times(dvr, phi, dS, F, E);
      T* dvj = dv + j * ld;
      for (int64_t e = 0; e < HD; ++e) dvj[e] = acc ? dvj[e] + dvr[e] : dvr[e];
      math::lin_phi_bwd(dk + j * ld, k + j * ld, dphi, HD, d.fm, mj, acc);
    }
  });
}

}  // namespace

void linear_attention_forward_cpu(Tensor& y, LinAttnSaved& s, const Tensor& qkv, const Tensor& mask) {
  const LinAttnDims& d = s.d;
  Tensor state = d.causal ? Tensor() : empty({d.B, d.NH, d.F(), d.E()}, qkv.dtype());
  Tensor den = empty({d.B, d.NH, d.N}, qkv.dtype());
  dispatch_float(qkv.dtype(), d.op, [&](auto tag) {
    using T = decltype(tag);
    if (d.B * d.N == 0) return;
    forward_loop<T>(y.data<T>(), d.causal ? nullptr : state.data<T>(), den.data<T>(), qkv.data<T>(),
                    mask.defined() ? mask.data<T>() : nullptr, d);
  });
  s.qkv = qkv;
  s.mask = mask;
  s.state = state;
  s.den = den;
}

void linear_attention_backward_cpu(GradBuf dqkv, const Tensor& dy, const LinAttnSaved& s) {
  const LinAttnDims& d = s.d;
  if (!dqkv) return;
  dispatch_float(s.qkv.dtype(), d.op, [&](auto tag) {
    using T = decltype(tag);
    if (d.B * d.N == 0) return;
    backward_loop<T>(dqkv.data<T>(), dy.data<T>(), s.qkv.data<T>(), s.mask.defined() ? s.mask.data<T>() : nullptr,
                     d.causal ? nullptr : s.state.data<T>(), s.den.data<T>(), d, dqkv.accumulate);
  });
}

}  // namespace pw
