// conv2d / conv1d on the CPU.
//
// Dense and grouped convolutions are im2col + GEMM. A chunk of images is unrolled
// side by side into one column matrix col (C*KH*KW, nb*OH*OW), so each group is one
// large GEMM  y_g (O/groups, nb*OH*OW) = w_g (O/groups, C/groups*KH*KW) @ col_g,
// which oneDNN threads well even for one image, and the weight gradient is one GEMM
// per chunk with a long K instead of a sum of small per-image products.
// The chunk size depends only on the shapes (never on the thread count), so
// results do not change with the number of threads.
//
// Depthwise convolutions (groups == C, O a multiple of C) have a GEMM K of only
// KH*KW: a direct kernel is faster and needs no column buffer.
#include <algorithm>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm.h"
#include "kernels/unfold/im2col.h"

namespace pw {

// Column buffer budget per chunk, in elements (default 2^23: 32 MB of float): bounds
// the memory of im2col without making the GEMMs small.
int64_t& detail::conv_col_budget() {
  static int64_t budget = int64_t(1) << 23;
  return budget;
}

namespace {

struct ConvShape {
  ConvGeom g;               // one image: g.C = all input channels, g.OH x g.OW output
  int64_t B = 0, O = 0, groups = 1;
  int64_t Cg() const { return g.C / groups; }      // input channels per group
  int64_t Og() const { return O / groups; }        // output channels per group
  int64_t rows() const { return Cg() * g.kk(); }   // GEMM K per group: one weight row
};

int64_t chunk_images(const ConvShape& s) {
  int64_t per_image = std::max<int64_t>(1, s.g.C * s.g.kk() * s.g.ohw());
  return std::max<int64_t>(1, std::min(s.B, detail::conv_col_budget() / per_image));
}

// col (C*KH*KW, nb*OHW) <- images [b0, b0+nb) of x (B,C,H,W), image j in columns [j*OHW, (j+1)*OHW).
template <class T>
void im2col_chunk(T* col, const T* x, const ConvShape& s, const TapRanges& r, int64_t b0, int64_t nb) {
  const ConvGeom& g = s.g;
  const int64_t L = nb * g.ohw();
#pragma omp parallel for collapse(2) if (nb * g.C * g.kk() * g.ohw() > kParallelGrain)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t c = 0; c < g.C; ++c) im2col(col + j * g.ohw(), L, x + (b0 + j) * g.C * g.H * g.W, g, r, c, c + 1);
}

// dx images [b0, b0+nb) += col2im(dcol); each (image, channel) task owns its plane of dx.
template <class T>
void col2im_chunk(T* dx, const T* dcol, const ConvShape& s, const TapRanges& r, int64_t b0, int64_t nb) {
  const ConvGeom& g = s.g;
  const int64_t L = nb * g.ohw();
#pragma omp parallel if (nb * g.C * g.kk() * g.ohw() > kParallelGrain)
  {
    std::vector<T> plane(g.H * g.W);  // col2im scratch
#pragma omp for collapse(2)
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t c = 0; c < g.C; ++c)
        col2im(dx + (b0 + j) * g.C * g.H * g.W, dcol + j * g.ohw(), L, g, r, c, c + 1, plane.data());
  }
}

// y (B,O,OH,OW) = conv(x (B,C,H,W), w (O,Cg,KH,KW)) + bias (O, may be null): im2col + GEMM.
template <class T>
void conv_forward_cpu(T* y, const T* x, const T* w, const T* bias, const ConvShape& s) {
  const int64_t ohw = s.g.ohw(), O = s.O, Og = s.Og(), rows = s.rows();
  const int64_t nb_max = chunk_images(s);
  TapRanges r(s.g);
  std::vector<T> col(s.g.C * s.g.kk() * nb_max * ohw), yc(O * nb_max * ohw);  // yc: (O, nb*OHW)
  for (int64_t b0 = 0; b0 < s.B; b0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.B - b0), L = nb * ohw;
    im2col_chunk(col.data(), x, s, r, b0, nb);
    gemm_strided_batched(false, false, s.groups, Og, L, rows, T(1), w, rows, Og * rows, col.data(), L, rows * L,
                         T(0), yc.data(), L, Og * L);
    // yc (O, nb, OHW) -> y (nb, O, OHW), adding the bias
#pragma omp parallel for collapse(2) if (O * L > kParallelGrain)
    for (int64_t j = 0; j < nb; ++j) {
      for (int64_t o = 0; o < O; ++o) {
        const T* src = yc.data() + o * L + j * ohw;
        T* dst = y + ((b0 + j) * O + o) * ohw;
        const T bo = bias ? bias[o] : T(0);
        for (int64_t i = 0; i < ohw; ++i) dst[i] = src[i] + bo;
      }
    }
  }
}

// Forward was y = conv(x, w):  dw_g += dy_g @ col_g^T,  dcol_g = w_g^T @ dy_g then dx += col2im(dcol).
// dx, dw may be null.   dy: (B,O,OH,OW)
template <class T>
void conv_backward_cpu(T* dx, T* dw, const T* dy, const T* x, const T* w, const ConvShape& s) {
  const int64_t ohw = s.g.ohw(), O = s.O, Og = s.Og(), rows = s.rows();
  const int64_t nb_max = chunk_images(s);
  TapRanges r(s.g);
  std::vector<T> col(s.g.C * s.g.kk() * nb_max * ohw), dyc(O * nb_max * ohw);  // dyc: (O, nb*OHW)
  // Over several chunks dw is summed in dwc and added once (the backward adds exactly its
  // own contribution); with one chunk the GEMM adds straight into dw.
  std::vector<T> dwc;
  T* dw_sum = dw;
  if (dw && nb_max < s.B) {
    dwc.assign(O * rows, T(0));
    dw_sum = dwc.data();
  }
  for (int64_t b0 = 0; b0 < s.B; b0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.B - b0), L = nb * ohw;
#pragma omp parallel for collapse(2) if (O * L > kParallelGrain)
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t o = 0; o < O; ++o)
        std::copy_n(dy + ((b0 + j) * O + o) * ohw, ohw, dyc.data() + o * L + j * ohw);
    if (dw) {
      im2col_chunk(col.data(), x, s, r, b0, nb);
      gemm_strided_batched(false, true, s.groups, Og, rows, L, T(1), dyc.data(), L, Og * L, col.data(), L,
                           rows * L, T(1), dw_sum, rows, Og * rows);
    }
    if (dx) {  // col now holds dcol
      gemm_strided_batched(true, false, s.groups, rows, L, Og, T(1), w, rows, Og * rows, dyc.data(), L, Og * L,
                           T(0), col.data(), L, rows * L);
      col2im_chunk(dx, col.data(), s, r, b0, nb);
    }
  }
  if (dw_sum != dw)
    for (int64_t i = 0; i < O * rows; ++i) dw[i] += dwc[i];
}

// Depthwise: y[b,o] = sum_{kh,kw} w[o,0,kh,kw] * x[b, o/m, oh*SH-PH+kh*DH, ow*SW-PW+kw*DW] + bias[o],
// m = O/C outputs per input channel. One (image, output channel) plane per task.
template <class T>
void depthwise_forward_cpu(T* y, const T* x, const T* w, const T* bias, const ConvShape& s) {
  const ConvGeom& g = s.g;
  const int64_t O = s.O, m = O / g.C, ohw = g.ohw();
  TapRanges r(g);
#pragma omp parallel for collapse(2) if (s.B * O * ohw * g.kk() > kParallelGrain)
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t o = 0; o < O; ++o) {
      const T* xc = x + (b * g.C + o / m) * g.H * g.W;
      T* yo = y + (b * O + o) * ohw;
      std::fill(yo, yo + ohw, bias ? bias[o] : T(0));
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = w[(o * g.KH + kh) * g.KW + kw];
          const TapRange rh = r.h[kh], rw = r.w[kw];
          for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
            T* yr = yo + oh * g.OW;
            const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
            if (g.SW == 1) for (int64_t ow = rw.lo; ow < rw.hi; ++ow) yr[ow] += wv * xc[base + ow];
            else for (int64_t ow = rw.lo; ow < rw.hi; ++ow) yr[ow] += wv * xc[base + ow * g.SW];
          }
        }
      }
    }
  }
}

// Forward was depthwise y = conv(x, w). dx[b,c] += w * dy over c's m output channels (one task
// per (b,c), so no two tasks touch one plane); dw[o] += sum over b and pixels of dy * x (one task per o).
template <class T>
void depthwise_backward_cpu(T* dx, T* dw, const T* dy, const T* x, const T* w, const ConvShape& s) {
  const ConvGeom& g = s.g;
  const int64_t O = s.O, C = g.C, m = O / C, ohw = g.ohw(), hw = g.H * g.W;
  TapRanges r(g);
  const bool par = s.B * O * ohw * g.kk() > kParallelGrain;
  if (dx) {
#pragma omp parallel if (par)
    {
      std::vector<T> plane(hw);  // dx[b,c] summed here over c's outputs and taps, then added once
#pragma omp for collapse(2)
      for (int64_t b = 0; b < s.B; ++b) {
        for (int64_t c = 0; c < C; ++c) {
          std::fill(plane.begin(), plane.end(), T(0));
          for (int64_t o = c * m; o < (c + 1) * m; ++o) {
            const T* dyo = dy + (b * O + o) * ohw;
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const T wv = w[(o * g.KH + kh) * g.KW + kw];
                const TapRange rh = r.h[kh], rw = r.w[kw];
                for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
                  const T* dyr = dyo + oh * g.OW;
                  const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
                  T* pl = plane.data();
                  if (g.SW == 1) for (int64_t ow = rw.lo; ow < rw.hi; ++ow) pl[base + ow] += wv * dyr[ow];
                  else for (int64_t ow = rw.lo; ow < rw.hi; ++ow) pl[base + ow * g.SW] += wv * dyr[ow];
                }
              }
            }
          }
          T* dxc = dx + (b * C + c) * hw;
          for (int64_t i = 0; i < hw; ++i) dxc[i] += plane[i];
        }
      }
    }
  }
  if (dw) {
#pragma omp parallel for if (par)
    for (int64_t o = 0; o < O; ++o) {
      const int64_t c = o / m;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const TapRange rh = r.h[kh], rw = r.w[kw];
          double acc = 0;  // NOTE: double even for float: B*OH*OW terms
          for (int64_t b = 0; b < s.B; ++b) {
            const T* xc = x + (b * C + c) * hw;
            const T* dyo = dy + (b * O + o) * ohw;
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              const T* dyr = dyo + oh * g.OW;
              const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
              T part = 0;  // one output row in T, the rows summed in double
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow) part += dyr[ow] * xc[base + ow * g.SW];
              acc += part;
            }
          }
          dw[(o * g.KH + kh) * g.KW + kw] += (T)acc;
        }
      }
    }
  }
}

// Forward added bias[o] to every pixel of output channel o: dbias[o] += sum over b, oh, ow of dy.
template <class T>
void conv_bias_backward_cpu(T* dbias, const T* dy, const ConvShape& s) {
  const int64_t ohw = s.g.ohw();
#pragma omp parallel for if (s.B * s.O * ohw > kParallelGrain)
  for (int64_t o = 0; o < s.O; ++o) {
    double acc = 0;  // NOTE: double even for float: B*OH*OW terms
    for (int64_t b = 0; b < s.B; ++b) {
      const T* p = dy + (b * s.O + o) * ohw;
      T part = 0;
      for (int64_t i = 0; i < ohw; ++i) part += p[i];
      acc += part;
    }
    dbias[o] += (T)acc;
  }
}

bool is_depthwise(const ConvShape& s) { return s.groups == s.g.C && s.groups > 1; }

// y = conv2d(x, w, b).   x: (B,C,H,W)  w: (O,C/groups,KH,KW)  b: (O)  y: (B,O,OH,OW)
struct Conv2dFn final : Node {
  Tensor x, w;
  ConvShape s;
  const char* name() const override { return "conv2d"; }
  void backward(const Tensor& dy, Grads& g) override {
    dispatch_float(dy.dtype(), "conv2d", [&](auto tag) {
      using T = decltype(tag);
      T* dx = g.needs(0) ? g[0].data<T>() : nullptr;
      T* dw = g.needs(1) ? g[1].data<T>() : nullptr;
      if (dx || dw) {
        if (is_depthwise(s)) depthwise_backward_cpu(dx, dw, dy.data<T>(), x.data<T>(), w.data<T>(), s);
        else conv_backward_cpu(dx, dw, dy.data<T>(), x.data<T>(), w.data<T>(), s);
      }
      if (g.needs(2)) conv_bias_backward_cpu(g[2].data<T>(), dy.data<T>(), s);
    });
  }
  void release() override {
    x = Tensor();
    w = Tensor();
  }
};

// Channel, group and bias checks shared by conv2d and conv1d (x, w of either rank).
void check_conv_channels(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int64_t groups) {
  check_cpu(op, x);
  check_cpu(op, w);
  check_same_dtype(op, x, w);
  PW_CHECK(groups >= 1, op, ": groups must be >= 1, got ", groups);
  const int64_t C = x.size(1), O = w.size(0);
  PW_CHECK(C % groups == 0 && O % groups == 0, op, ": groups = ", groups, " must divide both the input channels (x ",
           x.str(), ") and the output channels (w ", w.str(), ")");
  PW_CHECK(w.size(1) * groups == C, op, ": weight ", w.str(), " expects ", w.size(1) * groups,
           " input channels (w.size(1) * groups), but x ", x.str(), " has ", C);
  if (b.defined()) {
    check_cpu(op, b);
    check_same_dtype(op, x, b);
    PW_CHECK(b.dim() == 1 && b.size(0) == O, op, ": bias must be (O) = (", O, "), got ", b.str(), " for weight ",
             w.str());
  }
}

Tensor conv2d_cpu(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  ConvShape s;
  s.g = make_geom(op, x, w.size(2), w.size(3), stride, padding, dilation);
  s.B = x.size(0);
  s.O = w.size(0);
  s.groups = groups;
  Tensor y = empty({s.B, s.O, s.g.OH, s.g.OW}, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* bias = b.defined() ? b.data<T>() : nullptr;
    if (is_depthwise(s)) depthwise_forward_cpu(y.data<T>(), x.data<T>(), w.data<T>(), bias, s);
    else conv_forward_cpu(y.data<T>(), x.data<T>(), w.data<T>(), bias, s);
  });
  if (auto n = record<Conv2dFn>(y, {x, w, b})) {
    n->x = x;
    n->w = w;
    n->s = s;
  }
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  PW_CHECK(x.dim() == 4, "conv2d: expected x of shape (B,C,H,W), got ", x.str());
  PW_CHECK(w.dim() == 4, "conv2d: expected weight of shape (O,C/groups,KH,KW), got ", w.str(), " (x is ", x.str(), ")");
  check_conv_channels("conv2d", x, w, b, groups);
  return conv2d_cpu("conv2d", x, w, b, stride, padding, dilation, groups);
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding, int64_t dilation,
              int64_t groups) {
  PW_CHECK(x.dim() == 3, "conv1d: expected x of shape (B,C,L), got ", x.str());
  PW_CHECK(w.dim() == 3, "conv1d: expected weight of shape (O,C/groups,K), got ", w.str(), " (x is ", x.str(), ")");
  check_conv_channels("conv1d", x, w, b, groups);
  PW_CHECK(stride >= 1 && dilation >= 1 && padding >= 0, "conv1d: need stride >= 1, dilation >= 1, padding >= 0; got ",
           stride, ", ", dilation, ", ", padding);
  int64_t OL = conv_out_size(x.size(2), w.size(2), stride, padding, dilation);
  PW_CHECK(OL > 0, "conv1d: output length would be ", OL, " for x ", x.str(), ", weight ", w.str(), ", stride ",
           stride, ", padding ", padding, ", dilation ", dilation, "; the dilated kernel must fit in the padded input");
  Tensor y = conv2d_cpu("conv1d", x.reshape({x.size(0), x.size(1), 1, x.size(2)}),
                        w.reshape({w.size(0), w.size(1), 1, w.size(2)}), b, {1, stride}, {0, padding}, {1, dilation},
                        groups);
  return y.reshape({x.size(0), w.size(0), OL});
}

}  // namespace pw
