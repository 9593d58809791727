// im2col / col2im: the patch gather under unfold and under conv2d's GEMM path.
//
// For one image x (C,H,W) the column matrix has C*KH*KW rows and OH*OW columns:
//   col[(c*KH + kh)*KW + kw, oh*OW + ow] = x[c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
// (0 where the index falls in the padding). Rows have stride `ld` >= OH*OW so that the
// columns of several images can sit side by side in one matrix (conv folds a batch
// chunk into the GEMM's N that way).
//
// The valid output range of each kernel tap is computed once per call, so the hot
// loops are plain (strided) copies with no bounds test and no division.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

// Geometry of a 2-D sliding window over one image.
struct ConvGeom {
  int64_t C, H, W;     // input channels and size
  int64_t KH, KW;      // kernel
  int64_t SH, SW;      // stride
  int64_t PH, PW;      // zero padding, each side
  int64_t DH, DW;      // dilation
  int64_t OH, OW;      // output size
  int64_t kk() const { return KH * KW; }
  int64_t ohw() const { return OH * OW; }
};

// Output size of a window sweep, or <= 0 when the (dilated) kernel does not fit.
inline int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

// The window geometry of x (B,C,H,W) under a KH x KW kernel, with the argument checks
// shared by conv2d, conv1d and unfold (`op` names the caller in the message).
inline ConvGeom make_geom(const char* op, const Tensor& x, int64_t KH, int64_t KW, std::array<int64_t, 2> stride,
                          std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation) {
  PW_CHECK(x.dim() == 4, op, ": expected x of shape (B,C,H,W), got ", x.str());
  PW_CHECK(KH >= 1 && KW >= 1, op, ": kernel size must be >= 1, got ", KH, "x", KW);
  PW_CHECK(stride[0] >= 1 && stride[1] >= 1, op, ": stride must be >= 1, got {", stride[0], ",", stride[1], "}");
  PW_CHECK(dilation[0] >= 1 && dilation[1] >= 1, op, ": dilation must be >= 1, got {", dilation[0], ",",
           dilation[1], "}");
  PW_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding must be >= 0, got {", padding[0], ",",
           padding[1], "}");
  ConvGeom g{x.size(1), x.size(2), x.size(3), KH, KW, stride[0], stride[1], padding[0], padding[1],
             dilation[0], dilation[1], 0, 0};
  g.OH = conv_out_size(g.H, KH, g.SH, g.PH, g.DH);
  g.OW = conv_out_size(g.W, KW, g.SW, g.PW, g.DW);
  PW_CHECK(g.OH > 0 && g.OW > 0, op, ": output size would be ", g.OH, "x", g.OW, " for input ", x.str(),
           ", kernel ", KH, "x", KW, ", stride {", g.SH, ",", g.SW, "}, padding {", g.PH, ",", g.PW,
           "}, dilation {", g.DH, ",", g.DW, "}; the dilated kernel must fit in the padded input");
  return g;
}

// [lo, hi): the outputs o in [0, n_out) whose input index o*s - p + tap is inside [0, n_in).
struct TapRange {
  int64_t lo, hi;
};
inline TapRange tap_range(int64_t n_out, int64_t n_in, int64_t s, int64_t p, int64_t tap) {
  int64_t off = tap - p;  // input index of output 0
  // smallest o with o*s + off >= 0, largest o with o*s + off <= n_in - 1
  int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t hi = n_in - 1 - off < 0 ? 0 : (n_in - 1 - off) / s + 1;
  lo = std::min(lo, n_out);
  hi = std::max(lo, std::min(hi, n_out));
  return {lo, hi};
}

// The valid ranges of every kernel row and column tap of g.
struct TapRanges {
  std::vector<TapRange> h, w;  // h: (KH)  w: (KW)
  explicit TapRanges(const ConvGeom& g) {
    for (int64_t kh = 0; kh < g.KH; ++kh) h.push_back(tap_range(g.OH, g.H, g.SH, g.PH, kh * g.DH));
    for (int64_t kw = 0; kw < g.KW; ++kw) w.push_back(tap_range(g.OW, g.W, g.SW, g.PW, kw * g.DW));
  }
};

// col rows of channels [c0, c1) <- x (C,H,W) of one image.   col: (C*KH*KW, ld), columns [0, OH*OW) written.
template <class T>
void im2col(T* col, int64_t ld, const T* x, const ConvGeom& g, const TapRanges& r, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const TapRange rh = r.h[kh];
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const TapRange rw = r.w[kw];
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        std::fill(row, row + rh.lo * g.OW, T(0));
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          T* dst = row + oh * g.OW;
          // xc[base + ow*SW] is the input under output column ow (base may be < 0)
          const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
          std::fill(dst, dst + rw.lo, T(0));
          if (g.SW == 1) std::memcpy(dst + rw.lo, xc + base + rw.lo, (rw.hi - rw.lo) * sizeof(T));
          else for (int64_t ow = rw.lo; ow < rw.hi; ++ow) dst[ow] = xc[base + ow * g.SW];
          std::fill(dst + rw.hi, dst + g.OW, T(0));
        }
        std::fill(row + rh.hi * g.OW, row + g.ohw(), T(0));
      }
    }
  }
}

// The adjoint of im2col: dx (C,H,W) of one image, channels [c0, c1), += the column
// entries that im2col copied from each pixel (= with accumulate false: those
// channels of dx are written whole). Each channel's taps are summed in `plane`
// (H*W scratch) and added to dx once, so a backward adds exactly its own
// contribution (twice the backward gives exactly twice the gradient); sequential per
// channel, so the sum order per pixel is fixed whatever the threading above.
template <class T>
void col2im(T* dx, const T* col, int64_t ld, const ConvGeom& g, const TapRanges& r, int64_t c0, int64_t c1,
            T* plane, bool accumulate = true) {
  const int64_t hw = g.H * g.W;
  for (int64_t c = c0; c < c1; ++c) {
    std::fill(plane, plane + hw, T(0));
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const TapRange rh = r.h[kh];
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const TapRange rw = r.w[kw];
        const T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          const T* src = row + oh * g.OW;
          const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
          if (g.SW == 1) for (int64_t ow = rw.lo; ow < rw.hi; ++ow) plane[base + ow] += src[ow];
          else for (int64_t ow = rw.lo; ow < rw.hi; ++ow) plane[base + ow * g.SW] += src[ow];
        }
      }
    }
    T* dxc = dx + c * hw;
    if (accumulate) for (int64_t i = 0; i < hw; ++i) dxc[i] += plane[i];
    else std::copy(plane, plane + hw, dxc);
  }
}

}  // namespace pw
