// attention_qkv(_bias) on the CPU: one work item per (batch, head), each a chain of
// small GEMMs and a row softmax on an (N,N) tile that stays in cache. Compute only;
// the ops, node and dispatch rows are in attention.cpp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/profile.h"
#include "kernels/attention/attention_kernels.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/small_gemm.h"
#include "kernels/reduce/reduce_plan.h"
#include "kernels/softmax/softmax_math.h"

namespace pw {

namespace {

// Runs body(item) for item = b*NH + h over every (batch, head), spread over the
// threads when there is enough work. The gemm() path (float64, or HD not a multiple
// of 8) spreads only with at least one item per thread, else runs the items in
// order and lets each GEMM thread itself; small_gemm is single-threaded, so its
// path always spreads.
template <class F>
void for_each_head(const AttnDims& d, F body) {
  const int64_t items = d.B * d.NH;
  const bool spread = !omp_in_parallel() && items > 1 && items * d.N * d.N * d.HD > kParallelGrain &&
                      (d.small || items >= omp_get_max_threads());
  if (spread) {
#pragma omp parallel for schedule(static)
    for (int64_t it = 0; it < items; ++it) body(it);
  } else {
    for (int64_t it = 0; it < items; ++it) body(it);
  }
}

// Row softmax of an (N,N) tile with row stride ldp in place: exp and sum in one
// pass, then the scale.
template <class T>
void softmax_rows(T* p, int64_t N, int64_t ldp) {
  for (int64_t i = 0; i < N; ++i) {
    T* r = p + i * ldp;
    const T m = detail::row_max(r, N);
    const T inv = (T)(1.0 / detail::short_sum<T>(N, [&](int64_t j) {
      const T e = math::vexp(r[j] - m);
      r[j] = e;
      return e;
    }));
    for (int64_t j = 0; j < N; ++j) r[j] *= inv;
  }
}

// ds = p * (dp - rowsum(dp * p)) in place over dp, per row of an (N,N) tile with row stride ldp.
template <class T>
void softmax_rows_backward(T* ds, const T* p, int64_t N, int64_t ldp) {
  for (int64_t i = 0; i < N; ++i) {
    const T* pr = p + i * ldp;
    T* r = ds + i * ldp;
    const T dot = (T)detail::short_sum<T>(N, [&](int64_t j) { return r[j] * pr[j]; });
    for (int64_t j = 0; j < N; ++j) r[j] = math::softmax_bwd(pr[j], r[j], dot);
  }
}

// dst (HD, ldp) = src^T for src (N, HD) with row stride ld; columns N..ldp of dst are 0.
inline void transpose_pad(std::vector<float>& dst, const float* src, int64_t ld, int64_t N, int64_t HD,
                          int64_t ldp) {
  dst.assign(HD * ldp, 0.f);
  for (int64_t j = 0; j < N; ++j)
    for (int64_t c = 0; c < HD; ++c) dst[c * ldp + j] = src[j * ld + c];
}

// s (N, row stride ldp) += bias plane bp (N,N); a no-op without a bias.
template <class T>
void add_bias_rows(T* s, int64_t ldp, const T* bp, int64_t N) {
  if (!bp) return;
  for (int64_t i = 0; i < N; ++i) {
    T* r = s + i * ldp;
    const T* br = bp + i * N;
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) r[j] += br[j];
  }
}

// Per head: p = softmax(scale * q k^T + bias) (saved for backward), y = p v.
// y: (B,N,NH,HD)  p: (B,NH,N,ldp)  qkv: (B,N,3,NH,HD)  bias: (Bb,Hb,N,N) or null
template <class T>
void attention_forward_loop(T* y, T* p, const T* qkv, const T* bias, const AttnDims& d, T scale) {
  const int64_t N = d.N, HD = d.HD, ld = d.ld(), D = d.D();
  // Counted once here: the per-head GEMMs below run with the sink off, as some of them run
  // on worker threads, whose thread-local sink is unset (their share would be lost).
  count_flops(4 * d.B * d.NH * N * N * HD);
  struct SinkOff {
    int64_t* saved = g_flop_sink;
    SinkOff() { g_flop_sink = nullptr; }
    ~SinkOff() { g_flop_sink = saved; }
  } sink_off;
  if constexpr (std::is_same_v<T, float>) {
    if (d.small) {
      for_each_head(d, [&](int64_t it) {
        thread_local std::vector<float> kt;  // k^T: (HD, ldp), columns N..ldp zero
        const int64_t b = it / d.NH, h = it % d.NH;
        const float* q = qkv + d.q_off(b, h);
        float* pt = p + it * N * d.ldp;
        transpose_pad(kt, q + D, ld, N, HD, d.ldp);
        small_gemm(N, d.ldp, HD, scale, q, ld, 1, kt.data(), d.ldp, false, pt, d.ldp);
        add_bias_rows(pt, d.ldp, bias ? bias + d.bias_off(b, h) : nullptr, N);
        softmax_rows(pt, N, d.ldp);
        small_gemm(N, HD, N, 1.f, pt, d.ldp, 1, q + 2 * D, ld, false, y + d.y_off(b, h), D);
      });
      return;
    }
  }
  for_each_head(d, [&](int64_t it) {
    const int64_t b = it / d.NH, h = it % d.NH;
    const T* q = qkv + d.q_off(b, h);
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* pt = p + it * N * N;
    gemm(false, true, N, N, HD, scale, q, ld, k, ld, T(0), pt, N);
    add_bias_rows(pt, N, bias ? bias + d.bias_off(b, h) : nullptr, N);
    softmax_rows(pt, N, N);
    gemm(false, false, N, HD, N, T(1), pt, N, v, ld, T(0), y + d.y_off(b, h), D);
  });
}

// ds (N,N) = rows of src (N, row stride lds); a no-op when ds is null.
template <class T>
void copy_rows(T* ds, const T* src, int64_t lds, int64_t N) {
  if (!ds) return;
  for (int64_t i = 0; i < N; ++i) std::copy(src + i * lds, src + i * lds + N, ds + i * N);
}

// Forward was y = softmax(scale * q k^T + bias) v per head (p the softmax). Per head:
//   dp = dy v^T;  ds = p * (dp - rowsum(dp * p))  (softmax backward; dL/dlogits)
//   dv (+)= p^T dy;  dq (+)= scale * ds k;  dk (+)= scale * ds^T q
// `overwrite`: dqkv is fresh and every element is written once (beta 0), else added to.
// dqkv, qkv: (B,N,3,NH,HD)  dy: (B,N,NH,HD)  p: (B,NH,N,ldp)
// ds_all: (B,NH,N,N) receives ds of every head (for the bias gradient), or null.
template <class T>
void attention_backward_loop(T* dqkv, T* ds_all, const T* dy, const T* qkv, const T* p, const AttnDims& d, T scale,
                             bool overwrite) {
  const int64_t N = d.N, HD = d.HD, ld = d.ld(), D = d.D();
  const T beta = overwrite ? T(0) : T(1);
  if constexpr (std::is_same_v<T, float>) {
    if (d.small) {
      const int64_t lp = d.ldp;
      for_each_head(d, [&](int64_t it) {
        thread_local std::vector<float> vt, ds;  // v^T: (HD, lp);  dp, then ds: (N, lp)
        ds.resize(N * lp);
        const int64_t b = it / d.NH, h = it % d.NH;
        const float* q = qkv + d.q_off(b, h);
        float* dq = dqkv + d.q_off(b, h);
        const float* pt = p + it * N * lp;
        const float* dyt = dy + d.y_off(b, h);
        transpose_pad(vt, q + 2 * D, ld, N, HD, lp);
        small_gemm(N, lp, HD, 1.f, dyt, D, 1, vt.data(), lp, false, ds.data(), lp);       // dp = dy v^T
        small_gemm(N, HD, N, 1.f, pt, 1, lp, dyt, D, !overwrite, dq + 2 * D, ld);         // dv = p^T dy
        softmax_rows_backward(ds.data(), pt, N, lp);
        copy_rows(ds_all ? ds_all + it * N * N : nullptr, ds.data(), lp, N);
        small_gemm(N, HD, N, scale, ds.data(), lp, 1, q + D, ld, !overwrite, dq, ld);      // dq = ds k
        small_gemm(N, HD, N, scale, ds.data(), 1, lp, q, ld, !overwrite, dq + D, ld);      // dk = ds^T q
      });
      return;
    }
  }
  for_each_head(d, [&](int64_t it) {
    thread_local std::vector<T> scratch;  // dp / ds: (N,N), reused across calls
    scratch.resize(N * N);
    T* ds = scratch.data();
    const int64_t b = it / d.NH, h = it % d.NH;
    const T* q = qkv + d.q_off(b, h);
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* dq = dqkv + d.q_off(b, h);
    T* dk = dq + D;
    T* dv = dq + 2 * D;
    const T* pt = p + it * N * N;
    const T* dyt = dy + d.y_off(b, h);
    gemm(false, true, N, N, HD, T(1), dyt, D, v, ld, T(0), ds, N);
    gemm(true, false, N, HD, N, T(1), pt, N, dyt, D, beta, dv, ld);
    softmax_rows_backward(ds, pt, N, N);
    copy_rows(ds_all ? ds_all + it * N * N : nullptr, ds, N, N);
    gemm(false, false, N, HD, N, scale, ds, N, k, ld, beta, dq, ld);
    gemm(true, false, N, HD, N, scale, ds, N, q, ld, beta, dk, ld);
  });
}

// dbias (Bb,Hb,N,N) (=, or += unless overwrite) ds (B,NH,N,N) summed over the broadcast
// dims. One work item per dbias row, adding the heads in the fixed order (b, h): the
// result does not depend on the thread count.
template <class T>
void bias_grad_loop(T* dbias, const T* ds, const AttnDims& d, bool overwrite) {
  const int64_t N = d.N, rows = d.Bb * d.Hb * N;
  const int64_t nb = d.Bb == 1 ? d.B : 1, nh = d.Hb == 1 ? d.NH : 1;  // terms per element: nb * nh
#pragma omp parallel for if (d.B * d.NH * N * N > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % N, plane = r / N, gb = plane / d.Hb, gh = plane % d.Hb;
    T* out = dbias + r * N;
    if (overwrite) std::fill(out, out + N, T(0));
    for (int64_t ib = 0; ib < nb; ++ib)
      for (int64_t ih = 0; ih < nh; ++ih) {
        const int64_t b = d.Bb == 1 ? ib : gb, h = d.Hb == 1 ? ih : gh;
        const T* src = ds + ((b * d.NH + h) * N + i) * N;
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) out[j] += src[j];
      }
  }
}

}  // namespace

void attention_forward_cpu(Tensor& y, AttnSaved& s, const Tensor& qkv, const Tensor& bias, double scale) {
  AttnDims& d = s.d;
  // small_gemm where BLAS's per-call costs dominate: per layer (fwd + bwd) on one core,
  // 128x49 tokens, 4 heads of 16: 6.3 ms against 6.9 ms with dnnl_sgemm; 8x197 tokens,
  // 6 heads of 64: 23.4 ms against 21.9 ms. Chosen by the shape alone, never the
  // thread count, so any thread count runs (and rounds) the same kernels.
  d.small = qkv.dtype() == DType::F32 && d.HD % 8 == 0 && d.N < 128 && small_gemm_fast();
  d.ldp = d.small ? (d.N + 7) / 8 * 8 : d.N;
  Tensor p = empty({d.B, d.NH, d.N, d.ldp}, qkv.dtype());
  dispatch_float(qkv.dtype(), d.op, [&](auto tag) {
    using T = decltype(tag);
    if (d.B * d.N == 0) return;
    attention_forward_loop<T>(y.data<T>(), p.data<T>(), qkv.data<T>(), bias.defined() ? bias.data<T>() : nullptr, d,
                              (T)scale);
  });
  s.qkv = qkv;
  s.p = p;
}

void attention_backward_cpu(GradBuf dqkv, GradBuf dbias, const Tensor& dy, const AttnSaved& s, const Tensor& bias,
                            double scale) {
  const AttnDims& d = s.d;
  const bool want_b = bias.defined() && dbias;
  if (!dqkv && !want_b) return;
  Tensor scratch = dqkv ? Tensor() : empty_like(s.qkv);  // dqkv when only the bias wants a gradient
  const Tensor& dq = dqkv ? *dqkv : scratch;
  const bool overwrite = !dqkv || !dqkv.accumulate;
  Tensor ds = want_b ? empty({d.B, d.NH, d.N, d.N}, s.qkv.dtype()) : Tensor();
  dispatch_float(s.qkv.dtype(), d.op, [&](auto tag) {
    using T = decltype(tag);
    if (d.B * d.N != 0)
      attention_backward_loop<T>(dq.data<T>(), want_b ? ds.data<T>() : nullptr, dy.data<T>(), s.qkv.data<T>(),
                                 s.p.data<T>(), d, (T)scale, overwrite);
    // (also with no tokens or batch: a fresh dbias gets its zeros)
    if (want_b) bias_grad_loop<T>(dbias.data<T>(), ds.data<T>(), d, !dbias.accumulate);
  });
}

}  // namespace pw
