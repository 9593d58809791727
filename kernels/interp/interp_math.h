// Per-axis sampling math of torch.nn.functional.interpolate (bilinear and
// bicubic, antialias=False), shared by the CPU loops and (later) the CUDA
// kernels. Follows aten/src/ATen/native/UpSample.h line by line.
#pragma once
#include <cmath>
#include <cstdint>

#include "runtime/hd.h"

namespace pw::math {

// Input pixels per output pixel along one axis (area_pixel_compute_scale, for
// an explicit output size).
template <class T> PW_HD inline T interp_scale(int64_t in, int64_t out, bool align_corners) {
  if (align_corners) return out > 1 ? T(in - 1) / T(out - 1) : T(0);
  return T(in) / T(out);
}

// Real-valued source coordinate of output index o (area_pixel_compute_source_index).
// NOTE: for align_corners=false the linear modes clamp a negative coordinate to 0
// (so the first output rows copy the first input row when upsampling); cubic
// keeps it negative and clamps the taps instead.
template <class T> PW_HD inline T interp_source(T scale, int64_t o, bool align_corners, bool cubic) {
  if (align_corners) return scale * T(o);
  T src = scale * (T(o) + T(0.5)) - T(0.5);
  return (!cubic && src < T(0)) ? T(0) : src;
}

// Integer part and fraction of a source coordinate, guarded so that the index
// never passes the last input pixel (guard_index_and_lambda).
template <class T> PW_HD inline void interp_split(T src, int64_t in, int64_t& idx, T& frac) {
  int64_t i = (int64_t)std::floor(src);
  idx = i < in - 1 ? i : in - 1;
  T f = src - T(idx);
  frac = f < T(0) ? T(0) : (f > T(1) ? T(1) : f);
}

// Keys cubic convolution kernel, A = -0.75 (torch, as in OpenCV), at distance d:
//   |d| <= 1:     ((A+2)|d| - (A+3))|d|^2 + 1
//   1 < |d| < 2:  ((A|d| - 5A)|d| + 8A)|d| - 4A
template <class T> PW_HD inline T cubic_near(T d, T A) { return ((A + T(2)) * d - (A + T(3))) * d * d + T(1); }
template <class T> PW_HD inline T cubic_far(T d, T A) { return ((A * d - T(5) * A) * d + T(8) * A) * d - T(4) * A; }

// Weights of the taps at offsets -1, 0, 1, 2 from the integer part, t the
// fraction in [0,1] (get_cubic_upsample_coefficients; same rounding order).
template <class T> PW_HD inline void cubic_weights(T t, T w[4]) {
  const T A = T(-0.75);
  w[0] = cubic_far(t + T(1), A);
  w[1] = cubic_near(t, A);
  T u = T(1) - t;
  w[2] = cubic_near(u, A);
  w[3] = cubic_far(u + T(1), A);
}

PW_HD inline int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : (i > n - 1 ? n - 1 : i); }

}  // namespace pw::math
