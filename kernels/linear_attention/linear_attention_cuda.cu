// linear_attention_qkv on CUDA: plain kernels, one thread per output entry (or per
// row of the causal scans), each summing its terms in a fixed order: no atomics, no
// shared memory, deterministic. The math of every row is linear_attention_math.h's.
// Everything runs on cuda::stream() and never synchronises. Run so far only on the CPU
// backend for CUDA sources (-DPW_CUDA=EMU), not on a GPU; not tuned.
//
// Intermediates, per (b,h):  phiq, phik (N,F) (phik masked)  S1, dS1 (F,E)
// nd, g (N,E)  dphiq, dphik (N,F);   F = HD+1 (taylor) or HD (elu), E = HD+1.
#include "autograd/dispatch.h"
#include "kernels/linear_attention/linear_attention_kernels.h"
#include "kernels/linear_attention/linear_attention_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// The causal scans keep one row (E) or column (F) of a state per thread.
constexpr int64_t kMaxE = 129;  // HD <= 128

// [v_j, 1][e] of head (b,h).   qkv: (B,N,3,NH,HD)
template <class T>
__device__ __forceinline__ T vaug(const T* qkv, int64_t b, int64_t h, int64_t j, int64_t e, int64_t N, int64_t NH,
                                  int64_t HD) {
  return e < HD ? qkv[(b * N + j) * 3 * NH * HD + 2 * NH * HD + h * HD + e] : T(1);
}

// phiq, phik: (B,NH,N,F)  qkv: (B,N,3,NH,HD)  mask: (B,N) or null; one thread per (b,h,n).
template <class T>
__global__ void phi_kernel(T* phiq, T* phik, const T* qkv, const T* mask, int64_t B, int64_t N, int64_t NH,
                           int64_t HD, int fm) {
  const int64_t F = math::lin_features(fm, HD), D = NH * HD;
  PW_GRID_STRIDE(r, B * NH * N) {
    const int64_t n = r % N, bh = r / N, h = bh % NH, b = bh / NH;
    const T* q = qkv + (b * N + n) * 3 * D + h * HD;
    math::lin_phi_fwd(phiq + r * F, q, HD, fm, T(1));
    math::lin_phi_fwd(phik + r * F, q + D, HD, fm, mask ? mask[b * N + n] : T(1));
  }
}

// S1 (B,NH,F,E) = sum_j phik_j [v_j, 1]^T; one thread per entry.
template <class T>
__global__ void state_kernel(T* S, const T* phik, const T* qkv, int64_t B, int64_t N, int64_t NH, int64_t HD,
                             int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * F * E) {
    const int64_t e = t % E, f = (t / E) % F, bh = t / (E * F), h = bh % NH, b = bh / NH;
    const T* pk = phik + bh * N * F + f;
    T acc = 0;
    for (int64_t j = 0; j < N; ++j) acc += pk[j * F] * vaug(qkv, b, h, j, e, N, NH, HD);
    S[t] = acc;
  }
}

// nd (B,NH,N,E) = phiq_i^T S1; one thread per entry.
template <class T>
__global__ void apply_kernel(T* nd, const T* phiq, const T* S, int64_t B, int64_t N, int64_t NH, int64_t HD,
                             int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * N * E) {
    const int64_t e = t % E, r = t / E, bh = r / N;
    const T* pq = phiq + r * F;
    const T* col = S + bh * F * E + e;
    T acc = 0;
    for (int64_t f = 0; f < F; ++f) acc += pq[f] * col[f * E];
    nd[t] = acc;
  }
}

// Causal: nd_i = phiq_i^T S1_i, S1_i = sum_{j <= i} phik_j [v_j, 1]^T. One thread per
// (b,h,e) scans the tokens with column e of S1 in local memory.
template <class T>
__global__ void causal_scan_kernel(T* nd, const T* phiq, const T* phik, const T* qkv, int64_t B, int64_t N,
                                   int64_t NH, int64_t HD, int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * E) {
    const int64_t e = t % E, bh = t / E, h = bh % NH, b = bh / NH;
    T col[kMaxE];
    for (int64_t f = 0; f < F; ++f) col[f] = T(0);
    for (int64_t i = 0; i < N; ++i) {
      const T ve = vaug(qkv, b, h, i, e, N, NH, HD);
      const T* pk = phik + (bh * N + i) * F;
      const T* pq = phiq + (bh * N + i) * F;
      T acc = 0;
      for (int64_t f = 0; f < F; ++f) {
        col[f] += pk[f] * ve;
        acc += pq[f] * col[f];
      }
      nd[(bh * N + i) * E + e] = acc;
    }
  }
}

// y (B,N,NH,HD) = nd[:HD] / (nd[HD] + eps); one thread per element of y.
template <class T>
__global__ void finalize_kernel(T* y, const T* nd, int64_t B, int64_t N, int64_t NH, int64_t HD) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * N * NH * HD) {
    const int64_t c = t % HD, h = (t / HD) % NH, n = (t / (HD * NH)) % N, b = t / (HD * NH * N);
    const T* r = nd + ((b * NH + h) * N + n) * E;
    y[t] = r[c] / math::lin_den(r, HD);
  }
}

// g (B,NH,N,E) = [dy_i / den_i, -(dy_i . nd_i[:HD]) / den_i^2]  (dL/dnd_i)
// dy: (B,N,NH,HD); one thread per (b,h,i).
template <class T>
__global__ void g_kernel(T* g, const T* nd, const T* dy, int64_t B, int64_t N, int64_t NH, int64_t HD) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(r, B * NH * N) {
    const int64_t i = r % N, bh = r / N, h = bh % NH, b = bh / NH;
    const T* ndi = nd + r * E;
    const T* dyi = dy + (b * N + i) * NH * HD + h * HD;
    T* gi = g + r * E;
    const T dn = math::lin_den(ndi, HD), inv = T(1) / dn;
    T s = 0;
    for (int64_t c = 0; c < HD; ++c) {
      s += dyi[c] * ndi[c];
      gi[c] = dyi[c] * inv;
    }
    gi[HD] = -s * inv * inv;
  }
}

// dphiq (B,NH,N,F) = S1 g_i; one thread per entry.
template <class T>
__global__ void dphiq_kernel(T* dphiq, const T* S, const T* g, int64_t B, int64_t N, int64_t NH, int64_t HD,
                             int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * N * F) {
    const int64_t f = t % F, r = t / F, bh = r / N;
    const T* row = S + (bh * F + f) * E;
    const T* gi = g + r * E;
    T acc = 0;
    for (int64_t e = 0; e < E; ++e) acc += row[e] * gi[e];
    dphiq[t] = acc;
  }
}

// dS1 (B,NH,F,E) = sum_i phiq_i g_i^T; one thread per entry.
template <class T>
__global__ void dstate_kernel(T* dS, const T* phiq, const T* g, int64_t B, int64_t N, int64_t NH, int64_t HD,
                              int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * F * E) {
    const int64_t e = t % E, f = (t / E) % F, bh = t / (E * F);
    const T* pq = phiq + bh * N * F + f;
    const T* gc = g + bh * N * E + e;
    T acc = 0;
    for (int64_t i = 0; i < N; ++i) acc += pq[i * F] * gc[i * E];
    dS[t] = acc;
  }
}

// dphik (B,NH,N,F) = dS1 [v_j, 1]; one thread per entry.
template <class T>
__global__ void dphik_kernel(T* dphik, const T* dS, const T* qkv, int64_t B, int64_t N, int64_t NH, int64_t HD,
                             int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * N * F) {
    const int64_t f = t % F, r = t / F, j = r % N, bh = r / N, h = bh % NH, b = bh / NH;
    const T* row = dS + (bh * F + f) * E;
    T acc = 0;
    for (int64_t e = 0; e < E; ++e) acc += row[e] * vaug(qkv, b, h, j, e, N, NH, HD);
    dphik[t] = acc;
  }
}

// dv_j (in dqkv: (B,N,3,NH,HD)) (=, or += when acc) (dS1^T phik_j)[:HD]; one thread per element of dv.
template <class T>
__global__ void dv_kernel(T* dqkv, const T* dS, const T* phik, int64_t B, int64_t N, int64_t NH, int64_t HD,
                          int64_t F, bool acc) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * N * NH * HD) {
    const int64_t c = t % HD, h = (t / HD) % NH, j = (t / (HD * NH)) % N, b = t / (HD * NH * N);
    const int64_t bh = b * NH + h;
    const T* pk = phik + (bh * N + j) * F;
    const T* col = dS + bh * F * E + c;
    T a = 0;
    for (int64_t f = 0; f < F; ++f) a += pk[f] * col[f * E];
    T* o = dqkv + (b * N + j) * 3 * NH * HD + 2 * NH * HD + h * HD + c;
    *o = acc ? *o + a : a;
  }
}

// Causal: dphiq_i = S1_i g_i, S1_i the prefix state. One thread per (b,h,f) scans
// the tokens with row f of S1 in local memory.
template <class T>
__global__ void causal_dphiq_kernel(T* dphiq, const T* phik, const T* g, const T* qkv, int64_t B, int64_t N,
                                    int64_t NH, int64_t HD, int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * F) {
    const int64_t f = t % F, bh = t / F, h = bh % NH, b = bh / NH;
    T row[kMaxE];
    for (int64_t e = 0; e < E; ++e) row[e] = T(0);
    for (int64_t i = 0; i < N; ++i) {
      const T pkf = phik[(bh * N + i) * F + f];
      const T* gi = g + (bh * N + i) * E;
      T acc = 0;
      for (int64_t e = 0; e < E; ++e) {
        row[e] += pkf * vaug(qkv, b, h, i, e, N, NH, HD);
        acc += row[e] * gi[e];
      }
      dphiq[(bh * N + i) * F + f] = acc;
    }
  }
}

// Causal: dphik_j = dS1_j [v_j, 1], dS1_j = sum_{i >= j} phiq_i g_i^T. One thread per
// (b,h,f) scans the tokens backwards with row f of dS1 in local memory.
template <class T>
__global__ void causal_dphik_kernel(T* dphik, const T* phiq, const T* g, const T* qkv, int64_t B, int64_t N,
                                    int64_t NH, int64_t HD, int64_t F) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * F) {
    const int64_t f = t % F, bh = t / F, h = bh % NH, b = bh / NH;
    T row[kMaxE];
    for (int64_t e = 0; e < E; ++e) row[e] = T(0);
    for (int64_t j = N - 1; j >= 0; --j) {
      const T pqf = phiq[(bh * N + j) * F + f];
      const T* gj = g + (bh * N + j) * E;
      T acc = 0;
      for (int64_t e = 0; e < E; ++e) {
        row[e] += pqf * gj[e];
        acc += row[e] * vaug(qkv, b, h, j, e, N, NH, HD);
      }
      dphik[(bh * N + j) * F + f] = acc;
    }
  }
}

// Causal: dv_j (in dqkv) (=, or += when acc) (dS1_j^T phik_j)[:HD]. One thread per
// (b,h,c) scans the tokens backwards with column c of dS1 in local memory.
template <class T>
__global__ void causal_dv_kernel(T* dqkv, const T* phiq, const T* phik, const T* g, int64_t B, int64_t N,
                                 int64_t NH, int64_t HD, int64_t F, bool acc) {
  const int64_t E = HD + 1;
  PW_GRID_STRIDE(t, B * NH * HD) {
    const int64_t c = t % HD, bh = t / HD, h = bh % NH, b = bh / NH;
    T col[kMaxE];
    for (int64_t f = 0; f < F; ++f) col[f] = T(0);
    for (int64_t j = N - 1; j >= 0; --j) {
      const T gjc = g[(bh * N + j) * E + c];
      const T* pq = phiq + (bh * N + j) * F;
      const T* pk = phik + (bh * N + j) * F;
      T a = 0;
      for (int64_t f = 0; f < F; ++f) {
        col[f] += pq[f] * gjc;
        a += col[f] * pk[f];
      }
      T* o = dqkv + (b * N + j) * 3 * NH * HD + 2 * NH * HD + h * HD + c;
      *o = acc ? *o + a : a;
    }
  }
}

// dq, dk (in dqkv) (=, or += when acc) from dphiq, dphik (B,NH,N,F); one thread per (b,h,n).
template <class T>
__global__ void phi_bwd_kernel(T* dqkv, const T* dphiq, const T* dphik, const T* qkv, const T* mask, int64_t B,
                               int64_t N, int64_t NH, int64_t HD, int fm, bool acc) {
  const int64_t F = math::lin_features(fm, HD), D = NH * HD;
  PW_GRID_STRIDE(r, B * NH * N) {
    const int64_t n = r % N, bh = r / N, h = bh % NH, b = bh / NH;
    const int64_t off = (b * N + n) * 3 * D + h * HD;
    math::lin_phi_bwd(dqkv + off, qkv + off, dphiq + r * F, HD, fm, T(1), acc);
    math::lin_phi_bwd(dqkv + off + D, qkv + off + D, dphik + r * F, HD, fm, mask ? mask[b * N + n] : T(1), acc);
  }
}

// Launches kernel k over n threads' worth of grid-stride work (nothing when n is 0).
template <class... P, class... A>
void launch(int64_t n, void (*k)(P...), A... a) {
  if (n == 0) return;
  k<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(a...);
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void linear_attention_forward_cuda(Tensor& y, LinAttnSaved& s, const Tensor& qkv, const Tensor& mask) {
  const LinAttnDims& d = s.d;
  PW_CHECK(d.HD <= kMaxE - 1, d.op, ": on CUDA the head dim must be at most ", kMaxE - 1, ", got ", d.HD,
           " (qkv ", qkv.str(), ")");
  const int64_t B = d.B, N = d.N, NH = d.NH, HD = d.HD, F = d.F(), E = d.E();
  const DType t = qkv.dtype();
  s.qkv = qkv;
  s.mask = mask;
  s.phiq = empty({B, NH, N, F}, t, Device::CUDA);
  s.phik = empty({B, NH, N, F}, t, Device::CUDA);
  s.nd = empty({B, NH, N, E}, t, Device::CUDA);
  if (!d.causal) s.state = empty({B, NH, F, E}, t, Device::CUDA);
  dispatch_float(t, d.op, [&](auto tag) {
    using T = decltype(tag);
    if (B * N == 0) return;
    const T* x = qkv.data<T>();
    const T* m = mask.defined() ? mask.data<T>() : nullptr;
    T* pq = s.phiq.data<T>();
    T* pk = s.phik.data<T>();
    T* nd = s.nd.data<T>();
    launch(B * NH * N, phi_kernel<T>, pq, pk, x, m, B, N, NH, HD, d.fm);
    if (d.causal) {
      launch(B * NH * E, causal_scan_kernel<T>, nd, (const T*)pq, (const T*)pk, x, B, N, NH, HD, F);
    } else {
      T* S = s.state.data<T>();
      launch(B * NH * F * E, state_kernel<T>, S, (const T*)pk, x, B, N, NH, HD, F);
      launch(B * NH * N * E, apply_kernel<T>, nd, (const T*)pq, (const T*)S, B, N, NH, HD, F);
    }
    launch(B * N * NH * HD, finalize_kernel<T>, y.data<T>(), (const T*)nd, B, N, NH, HD);
  });
}

void linear_attention_backward_cuda(GradBuf dqkv, const Tensor& dy, const LinAttnSaved& s) {
  const LinAttnDims& d = s.d;
  if (!dqkv) return;
  const int64_t B = d.B, N = d.N, NH = d.NH, HD = d.HD, F = d.F(), E = d.E();
  const DType t = s.qkv.dtype();
  Tensor g = empty({B, NH, N, E}, t, Device::CUDA);
  Tensor dphiq = empty({B, NH, N, F}, t, Device::CUDA);
  Tensor dphik = empty({B, NH, N, F}, t, Device::CUDA);
  Tensor dS = d.causal ? Tensor() : empty({B, NH, F, E}, t, Device::CUDA);
  const bool acc = dqkv.accumulate;
  dispatch_float(t, d.op, [&](auto tag) {
    using T = decltype(tag);
    if (B * N == 0) return;
    const T* x = s.qkv.data<T>();
    const T* m = s.mask.defined() ? s.mask.data<T>() : nullptr;
    const T* pq = s.phiq.data<T>();
    const T* pk = s.phik.data<T>();
    T* gp = g.data<T>();
    T* dq = dphiq.data<T>();
    T* dk = dphik.data<T>();
    T* out = dqkv.data<T>();
    launch(B * NH * N, g_kernel<T>, gp, s.nd.data<T>(), dy.data<T>(), B, N, NH, HD);
    if (d.causal) {
      launch(B * NH * F, causal_dphiq_kernel<T>, dq, pk, (const T*)gp, x, B, N, NH, HD, F);
      launch(B * NH * F, causal_dphik_kernel<T>, dk, pq, (const T*)gp, x, B, N, NH, HD, F);
      launch(B * NH * HD, causal_dv_kernel<T>, out, pq, pk, (const T*)gp, B, N, NH, HD, F, acc);
    } else {
      T* dSp = dS.data<T>();
      launch(B * NH * N * F, dphiq_kernel<T>, dq, s.state.data<T>(), (const T*)gp, B, N, NH, HD, F);
      launch(B * NH * F * E, dstate_kernel<T>, dSp, pq, (const T*)gp, B, N, NH, HD, F);
      launch(B * NH * N * F, dphik_kernel<T>, dk, (const T*)dSp, x, B, N, NH, HD, F);
      launch(B * N * NH * HD, dv_kernel<T>, out, (const T*)dSp, pk, B, N, NH, HD, F, acc);
    }
    launch(B * NH * N, phi_bwd_kernel<T>, out, (const T*)dq, (const T*)dk, x, m, B, N, NH, HD, d.fm, acc);
  });
}

}  // namespace pw
