// local_attention_rel on CUDA: plain kernels, one thread per query row (forward, dq),
// per key row (dk, dv: the queries of a key are its own window, local_attention_math.h)
// or per entry of the relative tables, each summing its terms in a fixed order: no
// atomics, no shared memory, deterministic. The math of every row is
// local_attention_math.h's. Everything runs on cuda::stream() and never synchronises.
// Run so far only on the CPU backend for CUDA sources (-DPW_CUDA=EMU), not on a GPU;
// not tuned (a row per thread re-reads its window's keys from global memory).
//
// Intermediates: rel (B,NH,M,2K) saved by the forward;  dyy (B,NH,M) = dy_i.y_i;
// g (B,NH,M,2K) the ds of each query summed per row / column offset;
// part (B*NH,2K,half) per-head partials of [drow; dcol].
#include <cmath>

#include "autograd/dispatch.h"
#include "kernels/local_attention/local_attention_kernels.h"
#include "kernels/local_attention/local_attention_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// rel (rows,2K) = local_rel_terms of each patch query, 0 for a class query; a thread per row.
// q: (B,NH,M,HD)  row, col: (K,half)
template <class T>
__global__ void rel_kernel(T* rel, const T* q, const T* row, const T* col, int64_t rows, int64_t M, int64_t HD,
                           int64_t K, int64_t skip, T scale) {
  PW_GRID_STRIDE(n, rows) {
    T* o = rel + n * 2 * K;
    if (n % M < skip) {
      for (int64_t t = 0; t < 2 * K; ++t) o[t] = T(0);
    } else {
      math::local_rel_terms(o, q + n * HD, row, col, K, HD, scale);
    }
  }
}

// y (B,NH,M,HD), lse (B,NH,M): the online softmax of each row over its window; a thread per row.
template <class T>
__global__ void forward_kernel(T* y, T* lse, const T* q, const T* k, const T* v, const T* rel, int64_t rows,
                               int64_t M, int64_t HD, int64_t H, int64_t W, int64_t K, int64_t skip, T scale) {
  const int64_t r = K / 2;
  PW_GRID_STRIDE(n, rows) {
    const int64_t i = n % M, bh = n / M;
    const T* qi = q + n * HD;
    const T* kb = k + bh * M * HD;
    const T* vb = v + bh * M * HD;
    const T* reli = rel + n * 2 * K;
    T* yi = y + n * HD;
    for (int64_t e = 0; e < HD; ++e) yi[e] = T(0);
    T m = -INFINITY, s = 0;
    math::local_for_each(math::local_span(i, skip, H, W, r), skip, W, r,
                         [&](int64_t j, bool rl, int64_t tr, int64_t tc) {
                           const T l = math::local_logit(math::local_dot(qi, kb + j * HD, HD), scale, rl, reli, tr,
                                                         tc, K);
                           math::local_online_add(yi, m, s, l, vb + j * HD, HD);
                         });
    const T inv = T(1) / s;
    for (int64_t e = 0; e < HD; ++e) yi[e] *= inv;
    lse[n] = m + std::log(s);
  }
}

// dyy (rows) = dy_i . y_i; a thread per row.
template <class T>
__global__ void dyy_kernel(T* dyy, const T* dy, const T* y, int64_t rows, int64_t HD) {
  PW_GRID_STRIDE(n, rows) dyy[n] = math::local_dot(dy + n * HD, y + n * HD, HD);
}

// g (rows,2K) and dq (B,NH,M,HD) (null: not needed; acc: add to it) of each query; a thread per row.
template <class T>
__global__ void dq_kernel(T* dq, bool acc, T* g, const T* q, const T* k, const T* v, const T* row, const T* col,
                          const T* rel, const T* lse, const T* dyy, const T* dy, int64_t rows, int64_t M, int64_t HD,
                          int64_t H, int64_t W, int64_t K, int64_t skip, T scale) {
  const int64_t r = K / 2;
  PW_GRID_STRIDE(n, rows) {
    const int64_t i = n % M, bh = n / M;
    const T* qi = q + n * HD;
    const T* dyi = dy + n * HD;
    const T* kb = k + bh * M * HD;
    const T* vb = v + bh * M * HD;
    const T* reli = rel + n * 2 * K;
    T* gi = g + n * 2 * K;
    T* dqi = dq ? dq + n * HD : nullptr;
    const T lsei = lse[n], dyyi = dyy[n];
    for (int64_t t = 0; t < 2 * K; ++t) gi[t] = T(0);
    if (dqi && !acc)
      for (int64_t e = 0; e < HD; ++e) dqi[e] = T(0);
    const math::LocalSpan sp = math::local_span(i, skip, H, W, r);
    math::local_for_each(sp, skip, W, r, [&](int64_t j, bool rl, int64_t tr, int64_t tc) {
      const T* kj = kb + j * HD;
      const T p = math::local_prob(math::local_logit(math::local_dot(qi, kj, HD), scale, rl, reli, tr, tc, K), lsei);
      const T ds = math::local_ds(p, math::local_dot(dyi, vb + j * HD, HD), dyyi);
      if (dqi)
        for (int64_t e = 0; e < HD; ++e) dqi[e] += scale * ds * kj[e];
      if (rl) {
        gi[tr] += ds;
        gi[K + tc] += ds;
      }
    });
    if (dqi && sp.rel) math::local_rel_dq(dqi, gi, row, col, K, HD, scale);
  }
}

// dk, dv (B,NH,M,HD) (either null; acc_*: add to it) of each key j from the queries i of
// its window (j in S(i) iff i in S(j)); a thread per key row.
template <class T>
__global__ void dkv_kernel(T* dk, bool acc_k, T* dv, bool acc_v, const T* q, const T* k, const T* v, const T* rel,
                           const T* lse, const T* dyy, const T* dy, int64_t rows, int64_t M, int64_t HD, int64_t H,
                           int64_t W, int64_t K, int64_t skip, T scale) {
  const int64_t r = K / 2;
  PW_GRID_STRIDE(n, rows) {
    const int64_t j = n % M, base = n - j;  // base: row 0 of this head
    const T* kj = k + n * HD;
    const T* vj = v + n * HD;
    T* dkj = dk ? dk + n * HD : nullptr;
    T* dvj = dv ? dv + n * HD : nullptr;
    if (dkj && !acc_k)
      for (int64_t e = 0; e < HD; ++e) dkj[e] = T(0);
    if (dvj && !acc_v)
      for (int64_t e = 0; e < HD; ++e) dvj[e] = T(0);
    // the visitor's offsets are j's; query i's own are K-1-tr, K-1-tc
    math::local_for_each(math::local_span(j, skip, H, W, r), skip, W, r,
                         [&](int64_t i, bool rl, int64_t tr, int64_t tc) {
                           const int64_t ni = base + i;
                           const T* qi = q + ni * HD;
                           const T* dyi = dy + ni * HD;
                           const T l = math::local_logit(math::local_dot(qi, kj, HD), scale, rl, rel + ni * 2 * K,
                                                         K - 1 - tr, K - 1 - tc, K);
                           const T p = math::local_prob(l, lse[ni]);
                           const T ds = math::local_ds(p, math::local_dot(dyi, vj, HD), dyy[ni]);
                           if (dkj)
                             for (int64_t e = 0; e < HD; ++e) dkj[e] += scale * ds * qi[e];
                           if (dvj)
                             for (int64_t e = 0; e < HD; ++e) dvj[e] += p * dyi[e];
                         });
  }
}

// part (BH,2K,half): per head, scale sum_i g_i[t] q_i[:half] (t < K) or g_i[t] q_i[half:]
// (t >= K); a thread per entry.
template <class T>
__global__ void drel_part_kernel(T* part, const T* g, const T* q, int64_t BH, int64_t M, int64_t HD, int64_t K,
                                 T scale) {
  const int64_t half = HD / 2;
  PW_GRID_STRIDE(e, BH * 2 * K * half) {
    const int64_t c = e % half, t = (e / half) % (2 * K), bh = e / (2 * K * half);
    const int64_t off = (t < K ? 0 : half) + c;
    T acc = 0;
    for (int64_t i = 0; i < M; ++i) acc += g[(bh * M + i) * 2 * K + t] * q[(bh * M + i) * HD + off];
    part[e] = scale * acc;
  }
}

// drow, dcol (K,half) (either null; acc_*: add) = part summed over the heads in order.
template <class T>
__global__ void drel_reduce_kernel(T* drow, bool acc_r, T* dcol, bool acc_c, const T* part, int64_t BH, int64_t K,
                                   int64_t half) {
  PW_GRID_STRIDE(e, 2 * K * half) {
    const bool is_row = e < K * half;
    T* out = is_row ? drow : dcol;
    if (!out) continue;
    T acc = 0;
    for (int64_t bh = 0; bh < BH; ++bh) acc += part[bh * 2 * K * half + e];
    const int64_t o = is_row ? e : e - K * half;
    out[o] = (is_row ? acc_r : acc_c) ? out[o] + acc : acc;
  }
}

// Launches kernel k over n threads' worth of grid-stride work (nothing when n is 0).
template <class... P, class... A>
void launch(int64_t n, void (*k)(P...), A... a) {
  if (n <= 0) return;
  k<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(a...);
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void local_attention_forward_cuda(Tensor& y, LocalAttnSaved& s) {
  const LocalAttnDims& d = s.d;
  const DType t = s.q.dtype();
  const int64_t rows = d.rows();
  s.lse = empty({d.B, d.NH, d.M}, t, Device::CUDA);
  s.rel = empty({d.B, d.NH, d.M, 2 * d.K}, t, Device::CUDA);
  dispatch_float(t, d.op, [&](auto tag) {
    using T = decltype(tag);
    const T scale = T(1.0 / std::sqrt((double)d.HD));
    T* rel = s.rel.data<T>();
    launch(rows, rel_kernel<T>, rel, s.q.data<T>(), s.row.data<T>(), s.col.data<T>(), rows, d.M, d.HD, d.K, d.skip,
           scale);
    launch(rows, forward_kernel<T>, y.data<T>(), s.lse.data<T>(), s.q.data<T>(), s.k.data<T>(), s.v.data<T>(),
           (const T*)rel, rows, d.M, d.HD, d.H, d.W, d.K, d.skip, scale);
  });
}

void local_attention_backward_cuda(GradBuf dq, GradBuf dk, GradBuf dv, GradBuf drow, GradBuf dcol, const Tensor& dy,
                                   const LocalAttnSaved& s) {
  const LocalAttnDims& d = s.d;
  const DType t = s.q.dtype();
  const int64_t rows = d.rows(), BH = d.B * d.NH, K = d.K, half = d.half();
  const bool rel_grad = drow || dcol;
  Tensor dyy = empty({d.B, d.NH, d.M}, t, Device::CUDA);
  Tensor g = (dq || rel_grad) ? empty({d.B, d.NH, d.M, 2 * K}, t, Device::CUDA) : Tensor();
  Tensor part = rel_grad ? empty({BH, 2 * K, half}, t, Device::CUDA) : Tensor();
  dispatch_float(t, d.op, [&](auto tag) {
    using T = decltype(tag);
    const T scale = T(1.0 / std::sqrt((double)d.HD));
    const T* q = s.q.data<T>();
    const T* k = s.k.data<T>();
    const T* v = s.v.data<T>();
    const T* rel = s.rel.data<T>();
    const T* lse = s.lse.data<T>();
    const T* pdy = dy.data<T>();
    T* pdyy = dyy.data<T>();
    launch(rows, dyy_kernel<T>, pdyy, pdy, s.y.data<T>(), rows, d.HD);
    if (g.defined())
      launch(rows, dq_kernel<T>, dq.data<T>(), dq.accumulate, g.data<T>(), q, k, v, s.row.data<T>(), s.col.data<T>(),
             rel, lse, (const T*)pdyy, pdy, rows, d.M, d.HD, d.H, d.W, K, d.skip, scale);
    if (dk || dv)
      launch(rows, dkv_kernel<T>, dk.data<T>(), dk.accumulate, dv.data<T>(), dv.accumulate, q, k, v, rel, lse,
             (const T*)pdyy, pdy, rows, d.M, d.HD, d.H, d.W, K, d.skip, scale);
    if (rel_grad) {
      launch(BH * 2 * K * half, drel_part_kernel<T>, part.data<T>(), (const T*)g.data<T>(), q, BH, d.M, d.HD, K,
             scale);
      launch(2 * K * half, drel_reduce_kernel<T>, drow.data<T>(), drow.accumulate, dcol.data<T>(), dcol.accumulate,
             (const T*)part.data<T>(), BH, K, half);
    }
  });
}

}  // namespace pw
