// attention_qkv(_bias) on the CPU: one work item per (batch, head), each a chain of
// small GEMMs and a row softmax on an (N,N) tile that stays in cache. On CUDA: the
// flash kernels between head split/merge permutes (section "CUDA" below).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_cuda.h"
#include "kernels/attention/flash_attention_cuda.h"
#include "runtime/cuda/runtime.h"
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
  int64_t Bb = 1, Hb = 1;  // bias (Bb,Hb,N,N): 1 (broadcast) or B, NH
  bool small = false;  // float32 heads run on small_gemm (HD a multiple of 8, AVX2 kernels)
  int64_t D() const { return NH * HD; }        // row stride of y
  int64_t ld() const { return 3 * NH * HD; }   // row stride of q, k, v inside qkv
  // Offset of q[b, 0, h, 0] in qkv (k and v follow at +D and +2D), and of y[b, 0, h, 0] in y.
  int64_t q_off(int64_t b, int64_t h) const { return b * N * ld() + h * HD; }
  int64_t y_off(int64_t b, int64_t h) const { return b * N * D() + h * HD; }
  // Offset of the (N,N) bias plane that head (b,h) reads.
  int64_t bias_off(int64_t b, int64_t h) const { return ((Bb == 1 ? 0 : b) * Hb + (Hb == 1 ? 0 : h)) * N * N; }
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
void attention_forward_cpu(T* y, T* p, const T* qkv, const T* bias, const AttnDims& d, T scale) {
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
void attention_backward_cpu(T* dqkv, T* ds_all, const T* dy, const T* qkv, const T* p, const AttnDims& d, T scale,
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
void bias_grad_cpu(T* dbias, const T* ds, const AttnDims& d, bool overwrite) {
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

// y = attention_qkv(qkv) or attention_qkv_bias(qkv, bias).
// qkv: (B,N,3*NH*HD)  bias: (Bb,Hb,N,N) in any accepted shape, or undefined
// y: (B,N,NH*HD)  p: (B,NH,N,ldp) the softmax
struct AttentionFn final : Node {
  Tensor qkv, bias, p;
  AttnDims d;
  double scale = 1;
  const char* name() const override { return "attention"; }
  void backward(const Tensor& dy, Grads& g) override {
    const bool want_q = g.needs(0), want_b = bias.defined() && g.needs(1);
    if (!want_q && !want_b) return;
    bool fresh = true;
    Tensor scratch;  // dqkv when only the bias wants a gradient
    Tensor& dqkv = want_q ? g.out(0, fresh) : (scratch = empty_like(qkv));
    Tensor ds = want_b ? empty({d.B, d.NH, d.N, d.N}, qkv.dtype()) : Tensor();
    if (d.B * d.N == 0) return;  // nothing to write: every buffer is empty
    dispatch_float(qkv.dtype(), "attention", [&](auto tag) {
      using T = decltype(tag);
      attention_backward_cpu<T>(dqkv.data<T>(), want_b ? ds.data<T>() : nullptr, dy.data<T>(), qkv.data<T>(),
                                p.data<T>(), d, (T)scale, fresh);
      if (want_b) {
        bool fresh_b = false;
        Tensor& dbias = g.out(1, fresh_b);
        bias_grad_cpu<T>(dbias.data<T>(), ds.data<T>(), d, fresh_b);
      }
    });
  }
  void release() override { qkv = bias = p = Tensor(); }
};

bool g_attention_bf16 = false;

// ---- CUDA ----
#if PW_HAVE_CUDA
// y = attention on CUDA by the flash kernels.
// qkvp: (3,B,NH,N,HD) q, k, v  o: (B,NH,N,HD)  (T = float, or bf16 when `bf16`)
// lse: (B,NH,N) float32 row logsumexp   bias: (Bb,Hb,N,N) float32 in its own shape, or undefined
struct FlashAttentionFn final : Node {
  Tensor qkvp, o, lse, bias;
  AttnDims d;
  FlashBiasLayout bl;
  float scale = 1;
  const char* name() const override { return "attention"; }
  void backward(const Tensor& dy, Grads& g) override;
  void release() override { qkvp = o = lse = bias = Tensor(); }
};

// y (B,N,NH*HD) = flash attention of qkv (B,N,3*NH*HD), all float32; fills qkvp, o, lse.
template <class T>
void flash_forward(Tensor& y, const Tensor& qkvp, const Tensor& o, const Tensor& lse, const Tensor& qkv,
                   const Tensor& bias, const AttnDims& d, FlashBiasLayout bl, float scale) {
  const int64_t hs = d.B * d.NH * d.N * d.HD;  // elements of q (and of k, v)
  T* qp = static_cast<T*>(qkvp.raw());
  attention_split_heads_cuda<T>(qp, qkv.data<float>(), d.B, d.N, 3, d.NH, d.HD);
  flash_attention_forward_cuda<T>(static_cast<T*>(o.raw()), lse.data<float>(), qp, qp + hs, qp + 2 * hs,
                                  bias.defined() ? bias.data<float>() : nullptr, bl, (int)d.B, (int)d.NH, (int)d.N,
                                  (int)d.HD, scale, cuda::compute_stream());
  attention_merge_heads_cuda<T>(y.data<float>(), static_cast<const T*>(o.raw()), d.B, d.N, 1, d.NH, d.HD, false);
}

// Forward was y = merge(flash(split(qkv), bias)). dqkv (+)= merge(dq, dk, dv); dbias given
// to the graph (the flash kernel writes it deterministically, already broadcast-reduced).
template <class T>
void flash_backward(const FlashAttentionFn& f, const Tensor& dy, Grads& g) {
  const AttnDims& d = f.d;
  const int64_t hs = d.B * d.NH * d.N * d.HD;
  const DType st = f.qkvp.dtype();
  Tensor dout = empty({d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  Tensor dqkvp = empty({3, d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  Tensor delta = empty({d.B, d.NH, d.N}, DType::F32, Device::CUDA);
  const bool want_b = f.bias.defined() && g.needs(1);
  Tensor dbias = want_b ? empty(f.bias.shape(), DType::F32, Device::CUDA) : Tensor();
  attention_split_heads_cuda<T>(static_cast<T*>(dout.raw()), dy.data<float>(), d.B, d.N, 1, d.NH, d.HD);
  const T* qp = static_cast<const T*>(f.qkvp.raw());
  T* dp = static_cast<T*>(dqkvp.raw());
  flash_attention_backward_cuda<T>(dp, dp + hs, dp + 2 * hs, want_b ? dbias.data<float>() : nullptr,
                                   delta.data<float>(), qp, qp + hs, qp + 2 * hs, static_cast<const T*>(f.o.raw()),
                                   static_cast<const T*>(dout.raw()), f.lse.data<float>(),
                                   f.bias.defined() ? f.bias.data<float>() : nullptr, f.bl, (int)d.B, (int)d.NH,
                                   (int)d.N, (int)d.HD, f.scale, cuda::compute_stream());
  if (g.needs(0)) {
    bool fresh = false;
    Tensor& dqkv = g.out(0, fresh);
    attention_merge_heads_cuda<T>(dqkv.data<float>(), dp, d.B, d.N, 3, d.NH, d.HD, !fresh);
  }
  if (want_b) g.give(1, dbias);
}

void FlashAttentionFn::backward(const Tensor& dy, Grads& g) {
  if (!g.needs(0) && !(bias.defined() && g.needs(1))) return;
  if (qkvp.dtype() == DType::BF16)
    flash_backward<bf16_t>(*this, dy, g);
  else
    flash_backward<float>(*this, dy, g);
}

// The CUDA entry of attention_qkv(_bias); d filled (Bb, Hb included), qkv and bias checked.
Tensor attention_cuda(const char* op, const Tensor& qkv, const Tensor& bias, const AttnDims& d, double scale) {
  PW_CHECK(qkv.dtype() == DType::F32, op, ": on CUDA qkv must be float32, got ", dtype_name(qkv.dtype()),
           "; convert with .to(DType::F32)");
  PW_CHECK(flash_attention_cuda_supports_head_dim((int)d.HD), op, ": on CUDA the head dim must be 16, 32, 64 or ",
           "128, got HD = ", d.HD, " from qkv ", qkv.str(), " with ", d.NH, " heads");
  PW_CHECK(d.B * d.NH <= 65535 && d.N <= (1 << 30), op, ": qkv ", qkv.str(), " with ", d.NH,
           " heads is too large for the CUDA kernels (B*NH <= 65535)");
  const bool bf16 = g_attention_bf16;
  const DType st = bf16 ? DType::BF16 : DType::F32;
  FlashBiasLayout bl;
  bl.Bb = (int)d.Bb;
  bl.Hb = (int)d.Hb;
  Tensor y = empty({d.B, d.N, d.D()}, DType::F32, Device::CUDA);
  Tensor qkvp = empty({3, d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  Tensor o = empty({d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  Tensor lse = empty({d.B, d.NH, d.N}, DType::F32, Device::CUDA);
  if (bf16)
    flash_forward<bf16_t>(y, qkvp, o, lse, qkv, bias, d, bl, (float)scale);
  else
    flash_forward<float>(y, qkvp, o, lse, qkv, bias, d, bl, (float)scale);
  std::shared_ptr<FlashAttentionFn> n =
      bias.defined() ? record<FlashAttentionFn>(y, {qkv, bias}) : record<FlashAttentionFn>(y, {qkv});
  if (n) {
    n->qkvp = qkvp;
    n->o = o;
    n->lse = lse;
    n->bias = bias;
    n->d = d;
    n->bl = bl;
    n->scale = (float)scale;
  }
  return y;
}
#endif

// Checks qkv and fills the shapes of one call (the bias layout is left at (1,1)).
AttnDims attention_dims(const char* op, const Tensor& qkv, int64_t heads) {
  PW_CHECK(heads > 0, op, ": heads must be positive, got ", heads);
  PW_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0 && qkv.size(2) > 0, op, ": expected qkv of ",
           "shape (B,N,3*heads*dim_head) with heads = ", heads, ", got ", qkv.str());
  AttnDims d;
  d.B = qkv.size(0);
  d.N = qkv.size(1);
  d.NH = heads;
  d.HD = qkv.size(2) / (3 * heads);
  return d;
}

// attention_qkv(_bias) for both devices; bias undefined for none.
Tensor attention_impl(const char* op, const Tensor& qkv, const Tensor& bias, AttnDims d, double scale) {
#if PW_HAVE_CUDA
  if (qkv.device() == Device::CUDA) return attention_cuda(op, qkv, bias, d, scale);
#endif
  check_cpu(op, qkv);
  // small_gemm where BLAS's per-call costs dominate: per layer (fwd + bwd) on one core,
  // 128x49 tokens, 4 heads of 16: 6.3 ms against 6.9 ms with dnnl_sgemm; 8x197 tokens,
  // 6 heads of 64: 23.4 ms against 21.9 ms. Chosen by the shape alone, never the
  // thread count, so any thread count runs (and rounds) the same kernels.
  d.small = qkv.dtype() == DType::F32 && d.HD % 8 == 0 && d.N < 128 && small_gemm_fast();
  d.ldp = d.small ? (d.N + 7) / 8 * 8 : d.N;
  Tensor y = empty({d.B, d.N, d.D()}, qkv.dtype());
  Tensor p = empty({d.B, d.NH, d.N, d.ldp}, qkv.dtype());
  dispatch_float(qkv.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (d.B * d.N == 0) return;
    attention_forward_cpu<T>(y.data<T>(), p.data<T>(), qkv.data<T>(), bias.defined() ? bias.data<T>() : nullptr, d,
                             (T)scale);
  });
  std::shared_ptr<AttentionFn> n = bias.defined() ? record<AttentionFn>(y, {qkv, bias}) : record<AttentionFn>(y, {qkv});
  if (n) {
    n->qkv = qkv;
    n->bias = bias;
    n->p = p;
    n->d = d;
    n->scale = scale;
  }
  return y;
}

}  // namespace

Tensor attention_qkv(const Tensor& qkv, int64_t heads, double scale) {
  return attention_impl("attention_qkv", qkv, Tensor(), attention_dims("attention_qkv", qkv, heads), scale);
}

bool attention_bias_fits(const Shape& bias, int64_t B, int64_t NH, int64_t N) {
  const int64_t nd = (int64_t)bias.size();
  if (nd < 2 || nd > 4 || bias[nd - 1] != N || bias[nd - 2] != N) return false;
  const int64_t Hb = nd >= 3 ? bias[nd - 3] : 1, Bb = nd == 4 ? bias[0] : 1;
  return (Bb == 1 || Bb == B) && (Hb == 1 || Hb == NH);
}

Tensor attention_qkv_bias(const Tensor& qkv, const Tensor& bias, int64_t heads, double scale) {
  const char* op = "attention_qkv_bias";
  AttnDims d = attention_dims(op, qkv, heads);
  PW_CHECK(bias.defined(), op, ": bias is undefined; use attention_qkv for attention without a bias");
  check_same_device(op, qkv, bias);
  check_same_dtype(op, qkv, bias);
  PW_CHECK(attention_bias_fits(bias.shape(), d.B, d.NH, d.N), op, ": bias ", bias.str(),
           " does not broadcast to the logits (B,NH,N,N) = (", d.B, ",", d.NH, ",", d.N, ",", d.N,
           ") of qkv ", qkv.str(), "; expected (N,N), (NH or 1,N,N) or (B or 1,NH or 1,N,N)");
  const int64_t nd = bias.dim();
  d.Hb = nd >= 3 ? bias.size(nd - 3) : 1;
  d.Bb = nd == 4 ? bias.size(0) : 1;
  return attention_impl(op, qkv, bias, d, scale);
}

void set_attention_bf16(bool on) { g_attention_bf16 = on; }
bool attention_bf16() { return g_attention_bf16; }

}  // namespace pw
