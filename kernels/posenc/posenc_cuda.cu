// CUDA kernels of the position-encoding ops (posenc_kernels.h): the CPU loops of
// posenc_cpu.cpp as grid-stride kernels, one thread per output element or row.
#include "autograd/dispatch.h"
#include "kernels/posenc/posenc_kernels.h"
#include "kernels/posenc/posenc_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// One thread per bias element (h, p), p = i*N+j.   table: (T,NH)  bias: (NH,N,N)
template <class T>
__global__ void rel_bias_gather_fwd_kernel(T* __restrict__ bias, const T* __restrict__ table,
                                           const int64_t* __restrict__ idx, int64_t NH, int64_t NN) {
  PW_GRID_STRIDE(e, NH * NN) {
    const int64_t h = e / NN, p = e - h * NN, t = idx[p];
    bias[e] = t < 0 ? T(0) : table[t * NH + h];
  }
}
// One thread per table element (t, h): sums its pairs (the inverse index).
template <class T>
__global__ void rel_bias_gather_bwd_kernel(T* dtable, const T* __restrict__ dbias, const int64_t* __restrict__ off,
                                           const int64_t* __restrict__ pos, int64_t TT, int64_t NH, int64_t NN,
                                           bool acc) {
  PW_GRID_STRIDE(e, TT * NH) {
    const int64_t t = e / NH, h = e - t * NH;
    T s = T(0);
    for (int64_t k = off[t]; k < off[t + 1]; ++k) s += dbias[h * NN + pos[k]];
    dtable[e] = acc ? dtable[e] + s : s;
  }
}
// One thread per output element (row, j), row = (r, i).   in: (R,N,T)  out: (R,N,N)
template <class T>
__global__ void gather_rows_kernel(T* out, const T* __restrict__ in, const int64_t* __restrict__ idx, int64_t R,
                                   int64_t N, int64_t TT, bool acc) {
  PW_GRID_STRIDE(e, R * N * N) {
    const int64_t row = e / N, j = e - row * N, i = row % N, t = idx[i * N + j];
    const T v = t < 0 ? T(0) : in[row * TT + t];
    out[e] = acc ? out[e] + v : v;
  }
}
// One thread per row (r, i): it owns out's row of T.   in: (R,N,N)  out: (R,N,T)
template <class T>
__global__ void scatter_rows_kernel(T* out, const T* __restrict__ in, const int64_t* __restrict__ idx, int64_t R,
                                    int64_t N, int64_t TT, bool acc) {
  PW_GRID_STRIDE(row, R * N) {
    const int64_t i = row % N;
    const T* x = in + row * N;
    T* y = out + row * TT;
    const int64_t* ix = idx + i * N;
    if (!acc)
      for (int64_t t = 0; t < TT; ++t) y[t] = T(0);
    for (int64_t j = 0; j < N; ++j)
      if (ix[j] >= 0) y[ix[j]] += x[j];
  }
}
// One thread per element of y (fwd: (R,N,N) from x (R,N,2N-1)) or dx (bwd: (R,N,2N-1) from dy).
template <class T>
__global__ void rel_shift_kernel(T* out, const T* __restrict__ in, int64_t R, int64_t N, bool bwd, bool acc) {
  const int64_t M = 2 * N - 1, W = bwd ? M : N;
  PW_GRID_STRIDE(e, R * N * W) {
    const int64_t row = e / W, c = e - row * W, i = row % N;
    T v;
    if (bwd) {
      const int64_t j = math::rel_shift_key(i, c, N);
      v = j >= 0 && j < N ? in[row * N + j] : T(0);
    } else {
      v = in[row * M + math::rel_shift_col(i, c, N)];
    }
    out[e] = acc ? out[e] + v : v;
  }
}

// One thread per pair (b, n, g, m) of q/k heads g < 2NH, and per v element.
// y, x: (B,N,3,NH,HD)  cs, sn: (N,HD/2)
template <class T>
__global__ void rope_kernel(T* y, const T* __restrict__ x, const T* __restrict__ cs, const T* __restrict__ sn,
                            int64_t B, int64_t N, int64_t NH, int64_t HD, bool bwd, bool acc) {
  const int64_t H2 = HD / 2, D3 = 3 * NH * HD, P = 2 * NH * H2, V = NH * HD, per_row = P + V;
  PW_GRID_STRIDE(e, B * N * per_row) {
    const int64_t bn = e / per_row, w = e - bn * per_row, n = bn % N;
    const T* xr = x + bn * D3;
    T* yr = y + bn * D3;
    if (w < P) {
      const int64_t g = w / H2, m = w - g * H2, k = g * HD + 2 * m;
      T a, b;
      if (bwd) math::rope_bwd(xr[k], xr[k + 1], cs[n * H2 + m], sn[n * H2 + m], a, b);
      else math::rope_fwd(xr[k], xr[k + 1], cs[n * H2 + m], sn[n * H2 + m], a, b);
      yr[k] = acc ? yr[k] + a : a;
      yr[k + 1] = acc ? yr[k + 1] + b : b;
    } else {
      const int64_t k = 2 * NH * HD + (w - P);
      yr[k] = acc ? yr[k] + xr[k] : xr[k];
    }
  }
}

template <class T>
void gather_rows(T* out, const T* in, const RelIndex& r, int64_t R, bool acc) {
  if (R * r.N * r.N == 0) return;
  gather_rows_kernel<T><<<cuda::grid_for(R * r.N * r.N), cuda::kBlock, 0, cuda::stream()>>>(
      out, in, r.idx.data<int64_t>(), R, r.N, r.T, acc);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T>
void scatter_rows(T* out, const T* in, const RelIndex& r, int64_t R, bool acc) {
  if (R * r.N == 0) return;
  scatter_rows_kernel<T><<<cuda::grid_for(R * r.N), cuda::kBlock, 0, cuda::stream()>>>(
      out, in, r.idx.data<int64_t>(), R, r.N, r.T, acc);
  PW_CUDA_LAUNCH_CHECK();
}
void rope(Tensor& y, const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t NH, bool bwd, bool acc) {
  const int64_t B = x.size(0), N = x.size(1), HD = x.size(2) / (3 * NH);
  const int64_t n = B * N * (NH * HD + NH * HD);  // 2NH heads of HD/2 pairs, then NH*HD v elements
  if (n == 0) return;
  dispatch_float(x.dtype(), "rope_qkv", [&](auto tag) {
    using T = decltype(tag);
    rope_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        y.data<T>(), x.data<T>(), cos.data<T>(), sin.data<T>(), B, N, NH, HD, bwd, acc);
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void rel_bias_gather_forward_cuda(Tensor& bias, const Tensor& table, const RelIndex& r) {
  const int64_t NH = table.size(1), NN = r.N * r.N;
  if (NH * NN == 0) return;
  dispatch_float(table.dtype(), "rel_bias_gather", [&](auto tag) {
    using T = decltype(tag);
    rel_bias_gather_fwd_kernel<T><<<cuda::grid_for(NH * NN), cuda::kBlock, 0, cuda::stream()>>>(
        bias.data<T>(), table.data<T>(), r.idx.data<int64_t>(), NH, NN);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void rel_bias_gather_backward_cuda(GradBuf dtable, const Tensor& dbias, const RelIndex& r) {
  const int64_t NH = dtable->size(1), NN = r.N * r.N;
  if (r.T * NH == 0) return;
  dispatch_float(dbias.dtype(), "rel_bias_gather", [&](auto tag) {
    using T = decltype(tag);
    rel_bias_gather_bwd_kernel<T><<<cuda::grid_for(r.T * NH), cuda::kBlock, 0, cuda::stream()>>>(
        dtable.data<T>(), dbias.data<T>(), r.inv_off.data<int64_t>(), r.inv_pos.data<int64_t>(), r.T, NH, NN,
        dtable.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void rel_logits_gather_forward_cuda(Tensor& y, const Tensor& x, const RelIndex& r) {
  dispatch_float(x.dtype(), "rel_logits_gather", [&](auto tag) {
    using T = decltype(tag);
    gather_rows<T>(y.data<T>(), x.data<T>(), r, x.numel() / (r.N * r.T), false);
  });
}
void rel_logits_gather_backward_cuda(GradBuf dx, const Tensor& dy, const RelIndex& r) {
  dispatch_float(dy.dtype(), "rel_logits_gather", [&](auto tag) {
    using T = decltype(tag);
    scatter_rows<T>(dx.data<T>(), dy.data<T>(), r, dy.numel() / (r.N * r.N), dx.accumulate);
  });
}
void rel_logits_scatter_forward_cuda(Tensor& y, const Tensor& p, const RelIndex& r) {
  dispatch_float(p.dtype(), "rel_logits_scatter", [&](auto tag) {
    using T = decltype(tag);
    scatter_rows<T>(y.data<T>(), p.data<T>(), r, p.numel() / (r.N * r.N), false);
  });
}
void rel_logits_scatter_backward_cuda(GradBuf dp, const Tensor& dy, const RelIndex& r) {
  dispatch_float(dy.dtype(), "rel_logits_scatter", [&](auto tag) {
    using T = decltype(tag);
    gather_rows<T>(dp.data<T>(), dy.data<T>(), r, dy.numel() / (r.N * r.T), dp.accumulate);
  });
}

void rel_shift_forward_cuda(Tensor& y, const Tensor& x) {
  const int64_t N = x.size(-2), n = y.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "rel_shift", [&](auto tag) {
    using T = decltype(tag);
    rel_shift_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y.data<T>(), x.data<T>(),
                                                                               n / (N * N), N, false, false);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void rel_shift_backward_cuda(GradBuf dx, const Tensor& dy) {
  const int64_t N = dy.size(-1), n = dx->numel();
  if (n == 0) return;
  dispatch_float(dy.dtype(), "rel_shift", [&](auto tag) {
    using T = decltype(tag);
    rel_shift_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), n / (N * (2 * N - 1)), N, true, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void rope_qkv_forward_cuda(Tensor& y, const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t NH) {
  rope(y, qkv, cos, sin, NH, false, false);
}
void rope_qkv_backward_cuda(GradBuf dqkv, const Tensor& dy, const Tensor& cos, const Tensor& sin, int64_t NH) {
  rope(*dqkv, dy, cos, sin, NH, true, dqkv.accumulate);
}

}  // namespace pw
