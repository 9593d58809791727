// attention_qkv on the CPU: one work item per (batch, head), each a chain of
// small GEMMs and a row softmax on an (N,N) tile that stays in cache.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/attention/attention.h"
#include "autograd/profile.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/small_gemm.h"
#include "kernels/reduce/reduce_plan.h"
#include "kernels/softmax/softmax_math.h"

namespace pw {

namespace {

// Shapes of one call.   qkv: (B,N,3,NH,HD)  y: (B,N,NH,HD)  p: (B,NH,N,ldp)
struct AttnDims {
  int64_t B = 0, N = 0, NH = 0, HD = 0;
  int64_t ldp = 0;  // row stride of the (N,N) probability tiles: N, or N padded to 8 for small_gemm
  bool small = false;  // float32 heads run on small_gemm (HD a multiple of 8, AVX2 kernels)
  int64_t D() const { return NH * HD; }        // row stride of y
  int64_t ld() const { return 3 * NH * HD; }   // row stride of q, k, v inside qkv
  // Offset of q[b, 0, h, 0] in qkv (k and v follow at +D and +2D), and of y[b, 0, h, 0] in y.
  int64_t q_off(int64_t b, int64_t h) const { return b * N * ld() + h * HD; }
  int64_t y_off(int64_t b, int64_t h) const { return b * N * D() + h * HD; }
};

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

// Per head: p = softmax(scale * q k^T) (saved for backward), y = p v.
// y: (B,N,NH,HD)  p: (B,NH,N,ldp)  qkv: (B,N,3,NH,HD)
template <class T>
void attention_forward_cpu(T* y, T* p, const T* qkv, const AttnDims& d, T scale) {
  const int64_t N = d.N, HD = d.HD, ld = d.ld(), D = d.D();
  if constexpr (std::is_same_v<T, float>) {
    if (d.small) {
      count_flops(4 * d.B * d.NH * N * N * HD);
      for_each_head(d, [&](int64_t it) {
        thread_local std::vector<float> kt;  // k^T: (HD, ldp), columns N..ldp zero
        const int64_t b = it / d.NH, h = it % d.NH;
        const float* q = qkv + d.q_off(b, h);
        float* pt = p + it * N * d.ldp;
        transpose_pad(kt, q + D, ld, N, HD, d.ldp);
        small_gemm(N, d.ldp, HD, scale, q, ld, 1, kt.data(), d.ldp, false, pt, d.ldp);
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
    softmax_rows(pt, N, N);
    gemm(false, false, N, HD, N, T(1), pt, N, v, ld, T(0), y + d.y_off(b, h), D);
  });
}

// Forward was y = softmax(scale * q k^T) v per head (p the softmax). Per head:
//   dp = dy v^T;  ds = p * (dp - rowsum(dp * p))  (softmax backward)
//   dv (+)= p^T dy;  dq (+)= scale * ds k;  dk (+)= scale * ds^T q
// `overwrite`: dqkv is fresh and every element is written once (beta 0), else added to.
// dqkv, qkv: (B,N,3,NH,HD)  dy: (B,N,NH,HD)  p: (B,NH,N,ldp)
template <class T>
void attention_backward_cpu(T* dqkv, const T* dy, const T* qkv, const T* p, const AttnDims& d, T scale,
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
    gemm(false, false, N, HD, N, scale, ds, N, k, ld, beta, dq, ld);
    gemm(true, false, N, HD, N, scale, ds, N, q, ld, beta, dk, ld);
  });
}

// y = attention_qkv(qkv).   qkv: (B,N,3*NH*HD)  y: (B,N,NH*HD)  p: (B,NH,N,ldp) the softmax
struct AttentionFn final : Node {
  Tensor qkv, p;
  AttnDims d;
  double scale = 1;
  const char* name() const override { return "attention"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    bool fresh = false;
    Tensor& dqkv = g.out(0, fresh);
    dispatch_float(qkv.dtype(), "attention", [&](auto tag) {
      using T = decltype(tag);
      attention_backward_cpu<T>(dqkv.data<T>(), dy.data<T>(), qkv.data<T>(), p.data<T>(), d, (T)scale, fresh);
    });
  }
  void release() override { qkv = p = Tensor(); }
};

}  // namespace

Tensor attention_qkv(const Tensor& qkv, int64_t heads, double scale) {
  check_cpu("attention_qkv", qkv);
  PW_CHECK(heads > 0, "attention_qkv: heads must be positive, got ", heads);
  PW_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0 && qkv.size(2) > 0, "attention_qkv: expected qkv of ",
           "shape (B,N,3*heads*dim_head) with heads = ", heads, ", got ", qkv.str());
  AttnDims d;
  d.B = qkv.size(0);
  d.N = qkv.size(1);
  d.NH = heads;
  d.HD = qkv.size(2) / (3 * heads);
  // small_gemm where BLAS's per-call costs dominate: per layer (fwd + bwd) on one core,
  // 128x49 tokens, 4 heads of 16: 6.3 ms against 6.9 ms with dnnl_sgemm; 8x197 tokens,
  // 6 heads of 64: 23.4 ms against 21.9 ms. Chosen by the shape alone, never the
  // thread count, so any thread count runs (and rounds) the same kernels.
  d.small = qkv.dtype() == DType::F32 && d.HD % 8 == 0 && d.N < 128 && small_gemm_fast();
  d.ldp = d.small ? (d.N + 7) / 8 * 8 : d.N;
  Tensor y = empty({d.B, d.N, d.D()}, qkv.dtype());
  Tensor p = empty({d.B, d.NH, d.N, d.ldp}, qkv.dtype());
  dispatch_float(qkv.dtype(), "attention_qkv", [&](auto tag) {
    using T = decltype(tag);
    if (d.B * d.N == 0) return;
    attention_forward_cpu<T>(y.data<T>(), p.data<T>(), qkv.data<T>(), d, (T)scale);
  });
  if (auto n = record<AttentionFn>(y, {qkv})) {
    n->qkv = qkv;
    n->p = p;
    n->d = d;
    n->scale = scale;
  }
  return y;
}

}  // namespace pw
