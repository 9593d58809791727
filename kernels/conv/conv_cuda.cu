// CUDA kernels of conv2d / conv1d and their tensor-level launchers (conv_kernels.h).
// Dense and grouped convs: im2col (kernels/unfold/unfold_kernels.h) + cuBLAS GEMM per
// chunk of images; depthwise (groups == C > 1): direct kernels; with
// ConvEngine::Cudnn (chosen at the forward) everything goes to conv_cudnn.cu.
// Backward kernels keep the GradBuf contract (write fresh, add otherwise); all sums
// are fixed-order (gathers and block reductions, no atomics): deterministic.
#include <algorithm>

#include "autograd/dispatch.h"
#include "kernels/conv/conv_kernels.h"
#include "kernels/gemm/gemm_cuda.h"
#include "kernels/unfold/unfold_kernels.h"
#include "runtime/cuda/common.cuh"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

namespace {

// Device scratch from the caching allocator, handed back (stream-ordered) at scope exit.
template <class T>
struct Buf {
  T* p = nullptr;
  size_t bytes = 0;
  explicit Buf(int64_t n) : bytes((size_t)std::max<int64_t>(n, 0) * sizeof(T)) {
    if (bytes) p = (T*)cuda::alloc(bytes);
  }
  ~Buf() {
    if (p) cuda::free(p, bytes);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

// Column-buffer budget per chunk of images, in elements (64 Mi: 256 MB of float).
constexpr int64_t kColBudget = int64_t(1) << 26;
int64_t chunk_images(const ConvGeom& g, int64_t B) {
  const int64_t per_image = std::max<int64_t>(1, g.C * g.KH * g.KW * g.OH * g.OW);
  return std::max<int64_t>(1, std::min(B, kColBudget / per_image));
}

// y[(b0+j), o, p] = yc[o, j*OHW + p] + bias[o].   yc: (O, nb*OHW)  y: (B,O,OHW)
template <class T>
__global__ void chunk_to_nchw_kernel(T* __restrict__ y, const T* __restrict__ yc, const T* __restrict__ bias,
                                     int64_t nb, int64_t O, int64_t ohw) {
  PW_GRID_STRIDE(t, nb * O * ohw) {
    const int64_t p = t % ohw, o = (t / ohw) % O, j = t / (ohw * O);
    y[t] = yc[o * nb * ohw + j * ohw + p] + (bias ? bias[o] : T(0));
  }
}
// dyc[o, j*OHW + p] = dy[(b0+j), o, p].   dy: (nb,O,OHW) from image b0  dyc: (O, nb*OHW)
template <class T>
__global__ void nchw_to_chunk_kernel(T* __restrict__ dyc, const T* __restrict__ dy, int64_t nb, int64_t O,
                                     int64_t ohw) {
  PW_GRID_STRIDE(t, nb * O * ohw) {
    const int64_t p = t % ohw, o = (t / ohw) % O, j = t / (ohw * O);
    dyc[o * nb * ohw + j * ohw + p] = dy[t];
  }
}

// dbias[o] (+)= sum over b, p of dy[b, o, p]: one block per o, fixed-order block_sum in double.
template <class T>
__global__ void conv_bias_bwd_kernel(T* __restrict__ dbias, const T* __restrict__ dy, int64_t B, int64_t O,
                                     int64_t ohw, bool accumulate) {
  __shared__ double sh[32];
  const int64_t o = blockIdx.x;
  double acc = 0;
  for (int64_t i = threadIdx.x; i < B * ohw; i += blockDim.x) {
    const int64_t b = i / ohw, p = i - b * ohw;
    acc += (double)dy[(b * O + o) * ohw + p];
  }
  acc = cuda::block_sum(acc, sh);
  if (threadIdx.x == 0) dbias[o] = accumulate ? dbias[o] + (T)acc : (T)acc;
}

// --- depthwise (groups == C): output channel o reads input channel c = o / M, M = O / C ---

// One thread per output element t = (b, o, oh, ow).   w: (O,1,KH,KW)
template <class T>
__global__ void dw_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w,
                              const T* __restrict__ bias, int64_t B, int64_t O, ConvGeom g) {
  const int64_t M = O / g.C;
  PW_GRID_STRIDE(t, B * O * g.OH * g.OW) {
    const int64_t ow = t % g.OW, oh = (t / g.OW) % g.OH, o = (t / (g.OW * g.OH)) % O, b = t / (g.OW * g.OH * O);
    const T* xp = x + (b * g.C + o / M) * g.H * g.W;
    const T* wp = w + o * g.KH * g.KW;
    T acc = bias ? bias[o] : T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.SW - g.PW + kw * g.DW;
        if (iw < 0 || iw >= g.W) continue;
        acc += xp[ih * g.W + iw] * wp[kh * g.KW + kw];
      }
    }
    y[t] = acc;
  }
}
// dx: one thread per input pixel t = (b, c, h, w) gathers over its M output channels and taps.
template <class T>
__global__ void dw_bwd_data_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ w, int64_t B,
                                   int64_t O, ConvGeom g, bool accumulate) {
  const int64_t M = O / g.C;
  PW_GRID_STRIDE(t, B * g.C * g.H * g.W) {
    const int64_t iw = t % g.W, ih = (t / g.W) % g.H, c = (t / (g.W * g.H)) % g.C, b = t / (g.W * g.H * g.C);
    T acc = T(0);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t o = c * M + m;
      const T* dyp = dy + (b * O + o) * g.OH * g.OW;
      const T* wp = w + o * g.KH * g.KW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t hn = ih + g.PH - kh * g.DH;
        if (hn < 0 || hn % g.SH != 0 || hn / g.SH >= g.OH) continue;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t wn = iw + g.PW - kw * g.DW;
          if (wn < 0 || wn % g.SW != 0 || wn / g.SW >= g.OW) continue;
          acc += dyp[(hn / g.SH) * g.OW + wn / g.SW] * wp[kh * g.KW + kw];
        }
      }
    }
    dx[t] = accumulate ? dx[t] + acc : acc;
  }
}
// dw[o, kh, kw] (+)= sum over b, oh, ow of dy[b,o,oh,ow] * x[b, o/M, ih, iw]: one block per
// (o, tap), fixed-order block_sum in double.
template <class T>
__global__ void dw_bwd_weight_kernel(T* __restrict__ dw, const T* __restrict__ dy, const T* __restrict__ x,
                                     int64_t B, int64_t O, ConvGeom g, bool accumulate) {
  __shared__ double sh[32];
  const int64_t M = O / g.C, kk = g.KH * g.KW, o = blockIdx.x / kk, tap = blockIdx.x % kk;
  const int64_t kh = tap / g.KW, kw = tap % g.KW, ohw = g.OH * g.OW;
  double acc = 0;
  for (int64_t i = threadIdx.x; i < B * ohw; i += blockDim.x) {
    const int64_t b = i / ohw, p = i - b * ohw, oh = p / g.OW, ow = p - oh * g.OW;
    const int64_t ih = oh * g.SH - g.PH + kh * g.DH, iw = ow * g.SW - g.PW + kw * g.DW;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
    acc += (double)dy[(b * O + o) * ohw + p] * (double)x[((b * g.C + o / M) * g.H + ih) * g.W + iw];
  }
  acc = cuda::block_sum(acc, sh);
  if (threadIdx.x == 0) dw[blockIdx.x] = accumulate ? dw[blockIdx.x] + (T)acc : (T)acc;
}

bool depthwise(const ConvGeom& g, int64_t groups) { return groups == g.C && groups > 1; }

// y = conv(x, w) + bias, native kernels.   bias may be null
template <class T>
void conv_forward_native(T* y, const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t B, int64_t O,
                         int64_t groups) {
  const int64_t ohw = g.OH * g.OW, n = B * O * ohw;
  if (n == 0) return;
  if (depthwise(g, groups)) {
    dw_fwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, w, bias, B, O, g);
    PW_CUDA_LAUNCH_CHECK();
    return;
  }
  const int64_t Og = O / groups, rows = g.C / groups * g.KH * g.KW, chw = g.C * g.H * g.W;
  const int64_t nb_max = chunk_images(g, B);
  Buf<T> col(g.C * g.KH * g.KW * nb_max * ohw), yc(O * nb_max * ohw);
  for (int64_t b0 = 0; b0 < B; b0 += nb_max) {
    const int64_t nb = std::min(nb_max, B - b0), L = nb * ohw;
    im2col_cuda(col.p, x + b0 * chw, nb, g, ohw, L);
    // yc_g (Og, L) = w_g (Og, rows) @ col_g (rows, L), one GEMM per group
    gemm_cuda<T>(false, false, groups, Og, L, rows, T(1), w, rows, Og * rows, col.p, L, rows * L, T(0), yc.p, L,
                 Og * L);
    chunk_to_nchw_kernel<T><<<cuda::grid_for(nb * O * ohw), cuda::kBlock, 0, cuda::stream()>>>(
        y + b0 * O * ohw, yc.p, bias, nb, O, ohw);
    PW_CUDA_LAUNCH_CHECK();
  }
}

// Forward was y = conv(x, w) + bias, native kernels: dx (+)= conv_transpose(dy, w),
// dw (+)= dy (*) x, dbias (+)= sums of dy. The caller has handled B*O*OH*OW == 0.
template <class T>
void conv_backward_native(GradBuf dxb, GradBuf dwb, GradBuf dbb, const T* dy, const T* x, const T* w,
                          const ConvGeom& g, int64_t B, int64_t O, int64_t groups) {
  const int64_t ohw = g.OH * g.OW;
  if (dbb) {
    conv_bias_bwd_kernel<T><<<(unsigned)O, cuda::kBlock, 0, cuda::stream()>>>(dbb.data<T>(), dy, B, O, ohw,
                                                                             dbb.accumulate);
    PW_CUDA_LAUNCH_CHECK();
  }
  if (depthwise(g, groups)) {
    if (dxb) {
      const int64_t n = B * g.C * g.H * g.W;
      dw_bwd_data_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dxb.data<T>(), dy, w, B, O, g,
                                                                                    dxb.accumulate);
      PW_CUDA_LAUNCH_CHECK();
    }
    if (dwb) {
      dw_bwd_weight_kernel<T><<<(unsigned)(O * g.KH * g.KW), cuda::kBlock, 0, cuda::stream()>>>(
          dwb.data<T>(), dy, x, B, O, g, dwb.accumulate);
      PW_CUDA_LAUNCH_CHECK();
    }
    return;
  }
  if (!dxb && !dwb) return;
  dxb.zero_if_fresh();  // col2im_cuda adds
  T* dx = dxb.data<T>();
  T* dw = dwb.data<T>();
  // A fresh dw is summed into directly (first chunk beta 0, then 1); an accumulating one
  // through dwc below.
  const bool dw_direct = dw && !dwb.accumulate;
  const int64_t Og = O / groups, rows = g.C / groups * g.KH * g.KW, chw = g.C * g.H * g.W;
  const int64_t nb_max = chunk_images(g, B);
  Buf<T> col(g.C * g.KH * g.KW * nb_max * ohw), dyc(O * nb_max * ohw), dwc(dw && !dw_direct ? O * rows : 0);
  // An accumulating dw sums every chunk into dwc (zeroed), then is added once: the backward
  // adds exactly its own contribution, so a second backward gives exactly twice the first.
  if (dw && !dw_direct) cuda::memset_zero(dwc.p, dwc.bytes);
  for (int64_t b0 = 0; b0 < B; b0 += nb_max) {
    const int64_t nb = std::min(nb_max, B - b0), L = nb * ohw;
    nchw_to_chunk_kernel<T><<<cuda::grid_for(nb * O * ohw), cuda::kBlock, 0, cuda::stream()>>>(
        dyc.p, dy + b0 * O * ohw, nb, O, ohw);
    PW_CUDA_LAUNCH_CHECK();
    if (dw) {  // dw_g (Og, rows) (+)= dyc_g (Og, L) @ col_g^T (L, rows)
      im2col_cuda(col.p, x + b0 * chw, nb, g, ohw, L);
      gemm_cuda<T>(false, true, groups, Og, rows, L, T(1), dyc.p, L, Og * L, col.p, L, rows * L,
                   dw_direct && b0 == 0 ? T(0) : T(1), dw_direct ? dw : dwc.p, rows, Og * rows);
    }
    if (dx) {  // dcol_g (rows, L) = w_g^T (rows, Og) @ dyc_g (Og, L), then dx += col2im(dcol)
      gemm_cuda<T>(true, false, groups, rows, L, Og, T(1), w, rows, Og * rows, dyc.p, L, Og * L, T(0), col.p, L,
                   rows * L);
      col2im_cuda(dx + b0 * chw, col.p, nb, g, ohw, L);
    }
  }
  if (dw && !dw_direct) axpy_cuda<T>(dw, dwc.p, 1.0, O * rows);
}

}  // namespace

void conv_forward_cuda(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const ConvShape& s) {
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const T* bias = b.defined() ? b.data<T>() : nullptr;
#if defined(PW_HAVE_CUDNN)
    if (s.engine == ConvEngine::Cudnn)
      return conv_forward_cudnn(y.data<T>(), x.data<T>(), w.data<T>(), bias, s.g, s.B, s.O, s.groups);
#endif
    conv_forward_native(y.data<T>(), x.data<T>(), w.data<T>(), bias, s.g, s.B, s.O, s.groups);
  });
}

void conv_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const ConvShape& s) {
  if (s.B * s.O * s.g.OH * s.g.OW == 0) {  // no outputs: the gradients are zero
    dx.zero_if_fresh();
    dw.zero_if_fresh();
    db.zero_if_fresh();
    return;
  }
  dispatch_float(dy.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
#if defined(PW_HAVE_CUDNN)
    if (s.engine == ConvEngine::Cudnn)
      return conv_backward_cudnn(dx.data<T>(), dx.accumulate, dw.data<T>(), dw.accumulate, db.data<T>(),
                                 db.accumulate, dy.data<T>(), x.data<T>(), w.data<T>(), s.g, s.B, s.O, s.groups);
#endif
    conv_backward_native<T>(dx, dw, db, dy.data<T>(), x.data<T>(), w.data<T>(), s.g, s.B, s.O, s.groups);
  });
}

}  // namespace pw
