// CPU resizing kernels. Both modes are separable: along each axis every output
// index reads NT input taps (bilinear 2, bicubic 4) with fixed weights, so one
// table per axis, computed once, drives forward and backward for all planes.
// Backward gathers through the inverted tables: every dx element sums all its
// contributions, then is added to once. That keeps accumulation into an existing
// .grad exact and lets the loops run over rows of all planes in parallel, with
// results that never depend on the thread count.
// CUDA (interp_cuda.cu) uses the very same host-built tables, uploaded per call,
// and the same gather structure.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/interp/interp.h"
#include "kernels/interp/interp_cuda.h"
#include "kernels/interp/interp_math.h"

namespace pw {

namespace {

// The taps of one axis.   idx, wt: (O, NT): input index (already clamped) and weight.
template <class T>
struct Taps {
  std::vector<int64_t> idx;
  std::vector<T> wt;
};

// torch's compute_source_index_and_lambda (upsample_bilinear2d).
template <class T>
Taps<T> linear_taps(int64_t in, int64_t out, bool align_corners) {
  Taps<T> t;
  t.idx.resize(2 * out);
  t.wt.resize(2 * out);
  T scale = math::interp_scale<T>(in, out, align_corners);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i0, i1;
    T l1;
    if (in == out) {  // torch copies exactly
      i0 = i1 = o;
      l1 = T(0);
    } else {
      math::interp_split(math::interp_source(scale, o, align_corners, /*cubic=*/false), in, i0, l1);
      i1 = i0 + (i0 < in - 1 ? 1 : 0);
    }
    t.idx[2 * o] = i0, t.idx[2 * o + 1] = i1;
    t.wt[2 * o] = T(1) - l1, t.wt[2 * o + 1] = l1;
  }
  return t;
}

// torch's upsample_bicubic2d: taps at floor(src) - 1 .. + 2, clamped to [0, in).
template <class T>
Taps<T> cubic_taps(int64_t in, int64_t out, bool align_corners) {
  Taps<T> t;
  t.idx.resize(4 * out);
  t.wt.resize(4 * out);
  T scale = math::interp_scale<T>(in, out, align_corners);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i;
    T frac;
    math::interp_split(math::interp_source(scale, o, align_corners, /*cubic=*/true), in, i, frac);
    math::cubic_weights(frac, &t.wt[4 * o]);
    for (int64_t j = 0; j < 4; ++j) t.idx[4 * o + j] = math::clamp_index(i - 1 + j, in);
  }
  return t;
}

// Geometry: P planes of (H,W) resized to (OH,OW).
struct ResizeGeom {
  int64_t P = 0, H = 0, W = 0, OH = 0, OW = 0;
  bool align_corners = false, cubic = false;
};

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

// The taps of one axis inverted: input index i is read by the outputs
// out[start[i] .. start[i+1]) with weights wt[..] (a clamped border index can
// appear twice for one output; both entries stay, as their weights add).
template <class T>
struct Readers {
  std::vector<int64_t> start, out;  // start: (in + 1)
  std::vector<T> wt;
};
template <class T>
Readers<T> invert(const Taps<T>& t, int64_t in, int nt) {
  Readers<T> r;
  r.start.assign(in + 1, 0);
  for (int64_t i : t.idx) ++r.start[i + 1];
  for (int64_t i = 0; i < in; ++i) r.start[i + 1] += r.start[i];
  r.out.resize(t.idx.size());
  r.wt.resize(t.idx.size());
  std::vector<int64_t> fill(r.start.begin(), r.start.end() - 1);
  for (size_t k = 0; k < t.idx.size(); ++k) {  // in output order: a fixed summation order
    int64_t at = fill[t.idx[k]]++;
    r.out[at] = (int64_t)k / nt;
    r.wt[at] = t.wt[k];
  }
  return r;
}

// forward was y[oh,ow] = sum_ij wh[i] ww[j] x[ih[i], iw[j]];
// dx[h,w] += sum over (oh,a) reading row h, (ow,b) reading column w, of a b dy[oh,ow].
template <class T>
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
        dxr[w] += acc;
      }
    }
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

[[maybe_unused]] ResizeDims dims_of(const ResizeGeom& g, int nt) { return ResizeDims{g.P, g.H, g.W, g.OH, g.OW, nt}; }

// Builds both axes' tables in T and calls f(th, tw) with the right tap count.
template <class T, class F>
void with_taps(const ResizeGeom& g, F&& f) {
  if (g.cubic) {
    f(std::integral_constant<int, 4>{}, cubic_taps<T>(g.H, g.OH, g.align_corners),
      cubic_taps<T>(g.W, g.OW, g.align_corners));
  } else {
    f(std::integral_constant<int, 2>{}, linear_taps<T>(g.H, g.OH, g.align_corners),
      linear_taps<T>(g.W, g.OW, g.align_corners));
  }
}

struct ResizeFn final : Node {
  ResizeGeom g;
  const char* name() const override { return g.cubic ? "interpolate_bicubic" : "interpolate_bilinear"; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (!gr.needs(0)) return;
    dispatch_float(dy.dtype(), name(), [&](auto tag) {
      using T = decltype(tag);
      T* dx = gr[0].data<T>();
      with_taps<T>(g, [&](auto nt, const Taps<T>& th, const Taps<T>& tw) {
        constexpr int NT = decltype(nt)::value;
        if (dy.device() == Device::CUDA) {
          if constexpr (kHaveCuda) {
            Readers<T> rh = invert(th, g.H, NT), rw = invert(tw, g.W, NT);
            Tensor hs = upload(rh.start, DType::I64), ho = upload(rh.out, DType::I64), hw = upload(rh.wt, dy.dtype());
            Tensor ws = upload(rw.start, DType::I64), wo = upload(rw.out, DType::I64), wwt = upload(rw.wt, dy.dtype());
            resample_backward_cuda<T>(dx, dy.data<T>(), dims_of(g, NT), hs.data<int64_t>(), ho.data<int64_t>(),
                                      hw.data<T>(), ws.data<int64_t>(), wo.data<int64_t>(), wwt.data<T>());
          }
          return;
        }
        resample_backward_cpu(dx, dy.data<T>(), g, invert(th, g.H, NT), invert(tw, g.W, NT),
                              g.P * g.OH * g.OW * NT * NT);
      });
    });
  }
};

Tensor resize(const char* op, const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners, bool cubic) {
  PW_CHECK(x.defined(), op, ": input is an undefined tensor");
  PW_CHECK(x.dim() == 4, op, ": expected a 4-d input (B,C,H,W), got ", x.str());
  PW_CHECK(out_h > 0 && out_w > 0, op, ": output size must be positive, got (", out_h, ", ", out_w,
           ") for input ", x.str());
  PW_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": input planes are empty in ", x.str());
  ResizeGeom g;
  g.P = x.size(0) * x.size(1);
  g.H = x.size(2), g.W = x.size(3), g.OH = out_h, g.OW = out_w;
  g.align_corners = align_corners;
  g.cubic = cubic;
  Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.data<T>();
    with_taps<T>(g, [&](auto nt, const Taps<T>& th, const Taps<T>& tw) {
      if (x.device() == Device::CUDA) {
        if constexpr (kHaveCuda) {
          Tensor ih = upload(th.idx, DType::I64), wh = upload(th.wt, x.dtype());
          Tensor iw = upload(tw.idx, DType::I64), ww = upload(tw.wt, x.dtype());
          resample_forward_cuda<T>(yp, x.data<T>(), dims_of(g, decltype(nt)::value), ih.data<int64_t>(),
                                   wh.data<T>(), iw.data<int64_t>(), ww.data<T>());
        }
        return;
      }
      resample_forward_cpu<T, decltype(nt)::value>(yp, x.data<T>(), g, th, tw);
    });
  });
  if (auto n = record<ResizeFn>(y, {x})) n->g = g;
  return y;
}

}  // namespace

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return resize("interpolate_bilinear", x, out_h, out_w, align_corners, /*cubic=*/false);
}

Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return resize("interpolate_bicubic", x, out_h, out_w, align_corners, /*cubic=*/true);
}

}  // namespace pw
