// CPU resizing kernels over the axes' tap tables (interp_taps.h). Backward
// gathers through the inverted tables: every dx element sums all its
// contributions, then is written or added to once. That keeps accumulation into
// an existing .grad exact and lets the loops run over rows of all planes in
// parallel, with results that never depend on the thread count.
#include <algorithm>
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/interp/interp_kernels.h"
#include "kernels/interp/interp_taps.h"

namespace pw {

namespace {

using interp::invert;
using interp::Readers;
using interp::Taps;
using interp::with_taps;

template <class T, int NT>
void resample_forward_cpu(T* y, const T* x, const ResizeGeom& g, const Taps<T>& th, const Taps<T>& tw) {
  // x: (P,H,W)  y: (P,OH,OW)
#pragma omp parallel for collapse(2) if (g.P * g.OH * g.OW * NT * NT > kParallelGrain)
  for (int64_t p = 0; p < g.P; ++p) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const T* xp = x + p * g.H * g.W;
      T* yr = y + (p * g.OH + oh) * g.OW;
      const int64_t* ih = &th.idx[oh * NT];
      const T* wh = &th.wt[oh * NT];
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t* iw = &tw.idx[ow * NT];
        const T* ww = &tw.wt[ow * NT];
        T acc = 0;
        for (int i = 0; i < NT; ++i) {
          const T* row = xp + ih[i] * g.W;
          T r = 0;
          for (int j = 0; j < NT; ++j) r += ww[j] * row[iw[j]];
          acc += wh[i] * r;
        }
        yr[ow] = acc;
      }
    }
  }
}

// forward was y[oh,ow] = sum_ij wh[i] ww[j] x[ih[i], iw[j]];
// dx[h,w] (+)= sum over (oh,a) reading row h, (ow,b) reading column w, of a b dy[oh,ow].
template <class T, bool kAcc>
void resample_backward_cpu(T* dx, const T* dy, const ResizeGeom& g, const Readers<T>& rh, const Readers<T>& rw,
                           int64_t work) {
#pragma omp parallel for collapse(2) if (work > kParallelGrain)
  for (int64_t p = 0; p < g.P; ++p) {
    for (int64_t h = 0; h < g.H; ++h) {
      const T* dyp = dy + p * g.OH * g.OW;
      T* dxr = dx + (p * g.H + h) * g.W;
      for (int64_t w = 0; w < g.W; ++w) {
        T acc = 0;
        for (int64_t a = rh.start[h]; a < rh.start[h + 1]; ++a) {
          const T* dyr = dyp + rh.out[a] * g.OW;
          T r = 0;
          for (int64_t b = rw.start[w]; b < rw.start[w + 1]; ++b) r += rw.wt[b] * dyr[rw.out[b]];
          acc += rh.wt[a] * r;
        }
        dxr[w] = kAcc ? dxr[w] + acc : acc;
      }
    }
  }
}

}  // namespace

void resize_forward_cpu(Tensor& y, const Tensor& x, const ResizeGeom& g) {
  dispatch_float(x.dtype(), g.cubic ? "interpolate_bicubic" : "interpolate_bilinear", [&](auto tag) {
    using T = decltype(tag);
    with_taps<T>(g, [&](auto nt, const Taps<T>& th, const Taps<T>& tw) {
      resample_forward_cpu<T, decltype(nt)::value>(y.data<T>(), x.data<T>(), g, th, tw);
    });
  });
}

void resize_backward_cpu(GradBuf dx, const Tensor& dy, const ResizeGeom& g) {
  dispatch_float(dy.dtype(), g.cubic ? "interpolate_bicubic" : "interpolate_bilinear", [&](auto tag) {
    using T = decltype(tag);
    with_taps<T>(g, [&](auto nt, const Taps<T>& th, const Taps<T>& tw) {
      constexpr int NT = decltype(nt)::value;
      const Readers<T> rh = invert(th, g.H, NT), rw = invert(tw, g.W, NT);
      const int64_t work = g.P * g.OH * g.OW * NT * NT;
      if (dx.accumulate) resample_backward_cpu<T, true>(dx.data<T>(), dy.data<T>(), g, rh, rw, work);
      else resample_backward_cpu<T, false>(dx.data<T>(), dy.data<T>(), g, rh, rw, work);
    });
  });
}

}  // namespace pw
