// CUDA kernels of unfold, and the im2col / col2im launchers under it and conv (see unfold_kernels.h).
#include "autograd/dispatch.h"
#include "kernels/unfold/unfold_kernels.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// One thread per column element t = (j, row, p).   x: (nb,C,H,W)
template <class T>
__global__ void im2col_kernel(T* __restrict__ col, const T* __restrict__ x, int64_t nb, ConvGeom g,
                              int64_t img_stride, int64_t ld) {
  const int64_t ohw = g.OH * g.OW, rows = g.C * g.KH * g.KW;
  PW_GRID_STRIDE(t, nb * rows * ohw) {
    const int64_t p = t % ohw, row = (t / ohw) % rows, j = t / (ohw * rows);
    const int64_t ow = p % g.OW, oh = p / g.OW;
    const int64_t kw = row % g.KW, kh = (row / g.KW) % g.KH, c = row / (g.KH * g.KW);
    const int64_t ih = oh * g.SH - g.PH + kh * g.DH, iw = ow * g.SW - g.PW + kw * g.DW;
    T v = T(0);
    if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) v = x[((j * g.C + c) * g.H + ih) * g.W + iw];
    col[j * img_stride + row * ld + p] = v;
  }
}

// One thread per input pixel t = (j, c, h, w): the taps (kh, kw) whose window covers it,
// i.e. h = oh*SH - PH + kh*DH for an integer oh in [0, OH), likewise w.
// acc_into: add into dx, else write it (GradBuf contract).
template <class T>
__global__ void col2im_kernel(T* __restrict__ dx, const T* __restrict__ col, int64_t nb, ConvGeom g,
                              int64_t img_stride, int64_t ld, bool acc_into) {
  PW_GRID_STRIDE(t, nb * g.C * g.H * g.W) {
    const int64_t w = t % g.W, h = (t / g.W) % g.H, c = (t / (g.W * g.H)) % g.C, j = t / (g.W * g.H * g.C);
    const T* cj = col + j * img_stride;
    T acc = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t hn = h + g.PH - kh * g.DH;
      if (hn < 0 || hn % g.SH != 0) continue;
      const int64_t oh = hn / g.SH;
      if (oh >= g.OH) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t wn = w + g.PW - kw * g.DW;
        if (wn < 0 || wn % g.SW != 0) continue;
        const int64_t ow = wn / g.SW;
        if (ow >= g.OW) continue;
        acc += cj[((c * g.KH + kh) * g.KW + kw) * ld + oh * g.OW + ow];
      }
    }
    dx[t] = acc_into ? dx[t] + acc : acc;
  }
}

}  // namespace

template <class T>
void im2col_cuda(T* col, const T* x, int64_t nb, const ConvGeom& g, int64_t img_stride, int64_t ld) {
  const int64_t n = nb * g.C * g.KH * g.KW * g.OH * g.OW;
  if (n == 0) return;
  im2col_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(col, x, nb, g, img_stride, ld);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T>
void col2im_cuda(T* dx, const T* col, int64_t nb, const ConvGeom& g, int64_t img_stride, int64_t ld,
                 bool accumulate) {
  const int64_t n = nb * g.C * g.H * g.W;
  if (n == 0) return;
  col2im_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dx, col, nb, g, img_stride, ld,
                                                                          accumulate);
  PW_CUDA_LAUNCH_CHECK();
}

void unfold_forward_cuda(Tensor& y, const Tensor& x, const ConvGeom& g) {
  dispatch_float(x.dtype(), "unfold", [&](auto tag) {
    using T = decltype(tag);
    im2col_cuda(y.data<T>(), x.data<T>(), x.size(0), g, g.C * g.kk() * g.ohw(), g.ohw());
  });
}

void unfold_backward_cuda(GradBuf dx, const Tensor& dy, const ConvGeom& g) {
  dispatch_float(dy.dtype(), "unfold", [&](auto tag) {
    using T = decltype(tag);
    col2im_cuda(dx.data<T>(), dy.data<T>(), dx->size(0), g, g.C * g.kk() * g.ohw(), g.ohw(), dx.accumulate);
  });
}

template void im2col_cuda<float>(float*, const float*, int64_t, const ConvGeom&, int64_t, int64_t);
template void im2col_cuda<double>(double*, const double*, int64_t, const ConvGeom&, int64_t, int64_t);
template void col2im_cuda<float>(float*, const float*, int64_t, const ConvGeom&, int64_t, int64_t, bool);
template void col2im_cuda<double>(double*, const double*, int64_t, const ConvGeom&, int64_t, int64_t, bool);

}  // namespace pw
