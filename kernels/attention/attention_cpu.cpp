// attention_qkv on the CPU: one work item per (batch, head), each a chain of
// small GEMMs and a row softmax on an (N,N) tile that stays in cache.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/attention/attention.h"
#include "kernels/gemm/gemm.h"
#include "kernels/reduce/reduce_plan.h"
#include "kernels/softmax/softmax_math.h"

namespace pw {

namespace {

// Shapes of one call.   qkv: (B,N,3,NH,HD)  y: (B,N,NH,HD)  p: (B,NH,N,N)
struct AttnDims {
  int64_t B = 0, N = 0, NH = 0, HD = 0;
  int64_t D() const { return NH * HD; }        // row stride of y
  int64_t ld() const { return 3 * NH * HD; }   // row stride of q, k, v inside qkv
  // Offset of q[b, 0, h, 0] in qkv (k and v follow at +D and +2D), and of y[b, 0, h, 0] in y.
  int64_t q_off(int64_t b, int64_t h) const { return b * N * ld() + h * HD; }
  int64_t y_off(int64_t b, int64_t h) const { return b * N * D() + h * HD; }
};

// Runs body(item) for item = b*NH + h over every (batch, head). With at least one
// item per thread the items are spread over the threads and each GEMM runs on one
// thread; otherwise the items run in order and each GEMM may thread itself.
template <class F>
void for_each_head(const AttnDims& d, F body) {
  const int64_t items = d.B * d.NH;
  const bool spread = !omp_in_parallel() && items >= omp_get_max_threads() &&
                      items * d.N * d.N * d.HD > kParallelGrain;
  if (spread) {
#pragma omp parallel for schedule(static)
    for (int64_t it = 0; it < items; ++it) body(it);
  } else {
    for (int64_t it = 0; it < items; ++it) body(it);
  }
}

// Row softmax of an (N,N) tile in place: exp and sum in one pass, then the scale.
template <class T>
void softmax_rows(T* p, int64_t N) {
  for (int64_t i = 0; i < N; ++i) {
    T* r = p + i * N;
    const T m = detail::row_max(r, N);
    const T inv = (T)(1.0 / detail::short_sum<T>(N, [&](int64_t j) {
      const T e = math::vexp(r[j] - m);
      r[j] = e;
      return e;
    }));
    for (int64_t j = 0; j < N; ++j) r[j] *= inv;
  }
}

// Per head: p = softmax(scale * q k^T) (saved for backward), y = p v.
// y: (B,N,NH,HD)  p: (B,NH,N,N)  qkv: (B,N,3,NH,HD)
template <class T>
void attention_forward_cpu(T* y, T* p, const T* qkv, const AttnDims& d, T scale) {
  const int64_t N = d.N, HD = d.HD, ld = d.ld(), D = d.D();
  for_each_head(d, [&](int64_t it) {
    const int64_t b = it / d.NH, h = it % d.NH;
    const T* q = qkv + d.q_off(b, h);
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* pt = p + it * N * N;
    gemm(false, true, N, N, HD, scale, q, ld, k, ld, T(0), pt, N);
    softmax_rows(pt, N);
    gemm(false, false, N, HD, N, T(1), pt, N, v, ld, T(0), y + d.y_off(b, h), D);
  });
}

// Forward was y = softmax(scale * q k^T) v per head (p the softmax). Per head:
//   dp = dy v^T;  ds = p * (dp - rowsum(dp * p))  (softmax backward)
//   dv (+)= p^T dy;  dq (+)= scale * ds k;  dk (+)= scale * ds^T q
// `overwrite`: dqkv is fresh and every element is written once (beta 0), else added to.
// dqkv, qkv: (B,N,3,NH,HD)  dy: (B,N,NH,HD)  p: (B,NH,N,N)
template <class T>
void attention_backward_cpu(T* dqkv, const T* dy, const T* qkv, const T* p, const AttnDims& d, T scale,
                            bool overwrite) {
  const int64_t N = d.N, HD = d.HD, ld = d.ld(), D = d.D();
  const T beta = overwrite ? T(0) : T(1);
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
    for (int64_t i = 0; i < N; ++i) {
      const T* pr = pt + i * N;
      T* r = ds + i * N;
      const T dot = (T)detail::short_sum<T>(N, [&](int64_t j) { return r[j] * pr[j]; });
      for (int64_t j = 0; j < N; ++j) r[j] = math::softmax_bwd(pr[j], r[j], dot);
    }
    gemm(false, false, N, HD, N, scale, ds, N, k, ld, beta, dq, ld);
    gemm(true, false, N, HD, N, scale, ds, N, q, ld, beta, dk, ld);
  });
}

// y = attention_qkv(qkv).   qkv: (B,N,3*NH*HD)  y: (B,N,NH*HD)  p: (B,NH,N,N) the softmax
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
  Tensor y = empty({d.B, d.N, d.D()}, qkv.dtype());
  Tensor p = empty({d.B, d.NH, d.N, d.N}, qkv.dtype());
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
