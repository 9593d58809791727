// CUDA resizing kernels and their tensor-level launchers (interp_kernels.h). The
// tap tables are built on the host exactly as for the CPU (interp_taps.h) and
// uploaded per call, so the kernels use bit-identical indices and weights.
// Backward gathers through the inverted tables (one thread per input pixel, fixed
// order, written or added once): no atomics, the same bits every run.
#include <algorithm>

#include "autograd/dispatch.h"
#include "kernels/interp/interp_kernels.h"
#include "kernels/interp/interp_taps.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using interp::invert;
using interp::Readers;
using interp::Taps;
using interp::with_taps;

// P planes of (H,W) resized to (OH,OW); nt taps per axis (2 or 4).
struct ResizeDims {
  int64_t P, H, W, OH, OW;
  int nt;
};

// One thread per output element; the CPU's summation order (rows outer, columns inner).
template <class T, int NT>
__global__ void resample_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, ResizeDims d,
                                    const int64_t* __restrict__ ih, const T* __restrict__ wh,
                                    const int64_t* __restrict__ iw, const T* __restrict__ ww) {
  PW_GRID_STRIDE(t, d.P * d.OH * d.OW) {
    const int64_t ow = t % d.OW, oh = (t / d.OW) % d.OH, p = t / (d.OW * d.OH);
    const T* xp = x + p * d.H * d.W;
    T acc = 0;
#pragma unroll
    for (int i = 0; i < NT; ++i) {
      const T* row = xp + ih[oh * NT + i] * d.W;
      T r = 0;
#pragma unroll
      for (int j = 0; j < NT; ++j) r += ww[ow * NT + j] * row[iw[ow * NT + j]];
      acc += wh[oh * NT + i] * r;
    }
    y[t] = acc;
  }
}

// One thread per input element: sums every output that read it, then writes or adds once.
template <class T>
__global__ void resample_bwd_kernel(T* __restrict__ dx, const T* __restrict__ dy, ResizeDims d,
                                    const int64_t* __restrict__ rh_start, const int64_t* __restrict__ rh_out,
                                    const T* __restrict__ rh_wt, const int64_t* __restrict__ rw_start,
                                    const int64_t* __restrict__ rw_out, const T* __restrict__ rw_wt,
                                    bool accumulate) {
  PW_GRID_STRIDE(t, d.P * d.H * d.W) {
    const int64_t w = t % d.W, h = (t / d.W) % d.H, p = t / (d.W * d.H);
    const T* dyp = dy + p * d.OH * d.OW;
    T acc = 0;
    for (int64_t a = rh_start[h]; a < rh_start[h + 1]; ++a) {
      const T* dyr = dyp + rh_out[a] * d.OW;
      T r = 0;
      for (int64_t b = rw_start[w]; b < rw_start[w + 1]; ++b) r += rw_wt[b] * dyr[rw_out[b]];
      acc += rh_wt[a] * r;
    }
    if (accumulate) cuda::acc_add(dx[t], acc);
    else dx[t] = acc;
  }
}

// A host table copied to a CUDA tensor (t: its dtype, matching V). The tensor
// must outlive the launch; the caching allocator orders its reuse on the stream.
template <class V>
Tensor upload(const std::vector<V>& v, DType t) {
  Tensor h = empty({(int64_t)v.size()}, t);
  std::copy(v.begin(), v.end(), h.data<V>());
  return h.to(Device::CUDA);
}

}  // namespace

void resize_forward_cuda(Tensor& y, const Tensor& x, const ResizeGeom& g) {
  const int64_t n = g.P * g.OH * g.OW;
  if (n == 0) return;
  dispatch_float(x.dtype(), g.cubic ? "interpolate_bicubic" : "interpolate_bilinear", [&](auto tag) {
    using T = decltype(tag);
    with_taps<T>(g, [&](auto nt, const Taps<T>& th, const Taps<T>& tw) {
      constexpr int NT = decltype(nt)::value;
      const ResizeDims d{g.P, g.H, g.W, g.OH, g.OW, NT};
      Tensor ih = upload(th.idx, DType::I64), wh = upload(th.wt, x.dtype());
      Tensor iw = upload(tw.idx, DType::I64), ww = upload(tw.wt, x.dtype());
      resample_fwd_kernel<T, NT><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
          y.data<T>(), x.data<T>(), d, ih.data<int64_t>(), wh.data<T>(), iw.data<int64_t>(), ww.data<T>());
    });
  });
  PW_CUDA_LAUNCH_CHECK();
}

void resize_backward_cuda(GradBuf dx, const Tensor& dy, const ResizeGeom& g) {
  const int64_t n = g.P * g.H * g.W;
  if (n == 0) return;
  dispatch_float(dy.dtype(), g.cubic ? "interpolate_bicubic" : "interpolate_bilinear", [&](auto tag) {
    using T = decltype(tag);
    with_taps<T>(g, [&](auto nt, const Taps<T>& th, const Taps<T>& tw) {
      constexpr int NT = decltype(nt)::value;
      const ResizeDims d{g.P, g.H, g.W, g.OH, g.OW, NT};
      const Readers<T> rh = invert(th, g.H, NT), rw = invert(tw, g.W, NT);
      Tensor hs = upload(rh.start, DType::I64), ho = upload(rh.out, DType::I64), hw = upload(rh.wt, dy.dtype());
      Tensor ws = upload(rw.start, DType::I64), wo = upload(rw.out, DType::I64), wwt = upload(rw.wt, dy.dtype());
      resample_bwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
          dx.data<T>(), dy.data<T>(), d, hs.data<int64_t>(), ho.data<int64_t>(), hw.data<T>(), ws.data<int64_t>(),
          wo.data<int64_t>(), wwt.data<T>(), dx.accumulate);
    });
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace pw
