// CPU kernels of the position-encoding ops (posenc_kernels.h).
#include "autograd/dispatch.h"
#include "kernels/posenc/posenc_kernels.h"
#include "kernels/posenc/posenc_math.h"

namespace pw {

namespace {

// out[r,i,j] (+)= in[r,i,idx[i,j]], 0 where idx is -1.   in: (R,N,T)  out: (R,N,N)
template <class T, bool kAcc>
void gather_rows(T* out, const T* in, const int64_t* idx, int64_t R, int64_t N, int64_t TT) {
#pragma omp parallel for if (R * N * N > kParallelGrain)
  for (int64_t row = 0; row < R * N; ++row) {
    const int64_t i = row % N;
    const T* x = in + row * TT;
    T* y = out + row * N;
    const int64_t* ix = idx + i * N;
    for (int64_t j = 0; j < N; ++j) {
      const T v = ix[j] < 0 ? T(0) : x[ix[j]];
      y[j] = kAcc ? y[j] + v : v;
    }
  }
}

// out[r,i,t] (+)= sum of in[r,i,j] over j with idx[i,j] = t.   in: (R,N,N)  out: (R,N,T)
template <class T, bool kAcc>
void scatter_rows(T* out, const T* in, const int64_t* idx, int64_t R, int64_t N, int64_t TT) {
#pragma omp parallel for if (R * N * N > kParallelGrain)
  for (int64_t row = 0; row < R * N; ++row) {
    const int64_t i = row % N;
    const T* x = in + row * N;
    T* y = out + row * TT;
    const int64_t* ix = idx + i * N;
    if (!kAcc)
      for (int64_t t = 0; t < TT; ++t) y[t] = T(0);
    for (int64_t j = 0; j < N; ++j)
      if (ix[j] >= 0) y[ix[j]] += x[j];
  }
}

template <class T>
void gather_rows(bool acc, T* out, const T* in, const RelIndex& r, int64_t R) {
  if (acc) gather_rows<T, true>(out, in, r.idx.data<int64_t>(), R, r.N, r.T);
  else gather_rows<T, false>(out, in, r.idx.data<int64_t>(), R, r.N, r.T);
}
template <class T>
void scatter_rows(bool acc, T* out, const T* in, const RelIndex& r, int64_t R) {
  if (acc) scatter_rows<T, true>(out, in, r.idx.data<int64_t>(), R, r.N, r.T);
  else scatter_rows<T, false>(out, in, r.idx.data<int64_t>(), R, r.N, r.T);
}

// y, x: (B,N,3,NH,HD)  cos, sin: (N,HD/2); kBwd: the transpose rotation; kAcc: add.
template <class T, bool kBwd, bool kAcc>
void rope_loop(T* y, const T* x, const T* cs, const T* sn, int64_t B, int64_t N, int64_t NH, int64_t HD) {
  const int64_t H2 = HD / 2, D3 = 3 * NH * HD;
#pragma omp parallel for if (B * N * D3 > kParallelGrain)
  for (int64_t bn = 0; bn < B * N; ++bn) {
    const int64_t n = bn % N;
    const T* xr = x + bn * D3;
    T* yr = y + bn * D3;
    const T* c = cs + n * H2;
    const T* s = sn + n * H2;
    for (int64_t g = 0; g < 2 * NH; ++g)  // the q and k heads
      for (int64_t m = 0; m < H2; ++m) {
        const int64_t e = g * HD + 2 * m;
        T a, b;
        if (kBwd) math::rope_bwd(xr[e], xr[e + 1], c[m], s[m], a, b);
        else math::rope_fwd(xr[e], xr[e + 1], c[m], s[m], a, b);
        yr[e] = kAcc ? yr[e] + a : a;
        yr[e + 1] = kAcc ? yr[e + 1] + b : b;
      }
    for (int64_t e = 2 * NH * HD; e < D3; ++e) yr[e] = kAcc ? yr[e] + xr[e] : xr[e];  // v
  }
}

}  // namespace

void rel_bias_gather_forward_cpu(Tensor& bias, const Tensor& table, const RelIndex& r) {
  const int64_t NH = table.size(1), NN = r.N * r.N;
  dispatch_float(table.dtype(), "rel_bias_gather", [&](auto tag) {
    using T = decltype(tag);
    T* y = bias.data<T>();
    const T* tb = table.data<T>();
    const int64_t* idx = r.idx.data<int64_t>();
#pragma omp parallel for if (NH * NN > kParallelGrain)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t p = 0; p < NN; ++p) y[h * NN + p] = idx[p] < 0 ? T(0) : tb[idx[p] * NH + h];
  });
}

void rel_bias_gather_backward_cpu(GradBuf dtable, const Tensor& dbias, const RelIndex& r) {
  const int64_t NH = dtable->size(1), NN = r.N * r.N;
  dispatch_float(dbias.dtype(), "rel_bias_gather", [&](auto tag) {
    using T = decltype(tag);
    T* dt = dtable.data<T>();
    const T* dy = dbias.data<T>();
    const int64_t* off = r.inv_off.data<int64_t>();
    const int64_t* pos = r.inv_pos.data<int64_t>();
    const bool acc = dtable.accumulate;
#pragma omp parallel for if (NH * NN > kParallelGrain)
    for (int64_t t = 0; t < r.T; ++t)
      for (int64_t h = 0; h < NH; ++h) {
        T s = T(0);
        for (int64_t k = off[t]; k < off[t + 1]; ++k) s += dy[h * NN + pos[k]];
        dt[t * NH + h] = acc ? dt[t * NH + h] + s : s;
      }
  });
}

void rel_logits_gather_forward_cpu(Tensor& y, const Tensor& x, const RelIndex& r) {
  dispatch_float(x.dtype(), "rel_logits_gather", [&](auto tag) {
    using T = decltype(tag);
    gather_rows<T>(false, y.data<T>(), x.data<T>(), r, x.numel() / (r.N * r.T));
  });
}
void rel_logits_gather_backward_cpu(GradBuf dx, const Tensor& dy, const RelIndex& r) {
  dispatch_float(dy.dtype(), "rel_logits_gather", [&](auto tag) {
    using T = decltype(tag);
    scatter_rows<T>(dx.accumulate, dx.data<T>(), dy.data<T>(), r, dy.numel() / (r.N * r.N));
  });
}
void rel_logits_scatter_forward_cpu(Tensor& y, const Tensor& p, const RelIndex& r) {
  dispatch_float(p.dtype(), "rel_logits_scatter", [&](auto tag) {
    using T = decltype(tag);
    scatter_rows<T>(false, y.data<T>(), p.data<T>(), r, p.numel() / (r.N * r.N));
  });
}
void rel_logits_scatter_backward_cpu(GradBuf dp, const Tensor& dy, const RelIndex& r) {
  dispatch_float(dy.dtype(), "rel_logits_scatter", [&](auto tag) {
    using T = decltype(tag);
    gather_rows<T>(dp.accumulate, dp.data<T>(), dy.data<T>(), r, dy.numel() / (r.N * r.T));
  });
}

void rel_shift_forward_cpu(Tensor& y, const Tensor& x) {
  const int64_t N = x.size(-2), M = 2 * N - 1, R = x.numel() / (N * M);
  dispatch_float(x.dtype(), "rel_shift", [&](auto tag) {
    using T = decltype(tag);
    T* out = y.data<T>();
    const T* in = x.data<T>();
#pragma omp parallel for if (R * N * N > kParallelGrain)
    for (int64_t row = 0; row < R * N; ++row) {
      const int64_t i = row % N;
      for (int64_t j = 0; j < N; ++j) out[row * N + j] = in[row * M + math::rel_shift_col(i, j, N)];
    }
  });
}
void rel_shift_backward_cpu(GradBuf dx, const Tensor& dy) {
  const int64_t N = dy.size(-1), M = 2 * N - 1, R = dy.numel() / (N * N);
  dispatch_float(dy.dtype(), "rel_shift", [&](auto tag) {
    using T = decltype(tag);
    T* out = dx.data<T>();
    const T* in = dy.data<T>();
    const bool acc = dx.accumulate;
#pragma omp parallel for if (R * N * M > kParallelGrain)
    for (int64_t row = 0; row < R * N; ++row) {
      const int64_t i = row % N;
      for (int64_t c = 0; c < M; ++c) {
        const int64_t j = math::rel_shift_key(i, c, N);
        const T v = j >= 0 && j < N ? in[row * N + j] : T(0);
        out[row * M + c] = acc ? out[row * M + c] + v : v;
      }
    }
  });
}

void rope_qkv_forward_cpu(Tensor& y, const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t NH) {
  const int64_t B = qkv.size(0), N = qkv.size(1), HD = qkv.size(2) / (3 * NH);
  dispatch_float(qkv.dtype(), "rope_qkv", [&](auto tag) {
    using T = decltype(tag);
    rope_loop<T, false, false>(y.data<T>(), qkv.data<T>(), cos.data<T>(), sin.data<T>(), B, N, NH, HD);
  });
}
void rope_qkv_backward_cpu(GradBuf dqkv, const Tensor& dy, const Tensor& cos, const Tensor& sin, int64_t NH) {
  const int64_t B = dy.size(0), N = dy.size(1), HD = dy.size(2) / (3 * NH);
  dispatch_float(dy.dtype(), "rope_qkv", [&](auto tag) {
    using T = decltype(tag);
    if (dqkv.accumulate)
      rope_loop<T, true, true>(dqkv.data<T>(), dy.data<T>(), cos.data<T>(), sin.data<T>(), B, N, NH, HD);
    else rope_loop<T, true, false>(dqkv.data<T>(), dy.data<T>(), cos.data<T>(), sin.data<T>(), B, N, NH, HD);
  });
}

}  // namespace pw
