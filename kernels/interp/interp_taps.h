// The tap tables of the resizing ops, built on the host by both backends from
// interp_math.h, so the CPU loops and the CUDA kernels use bit-identical indices
// and weights. Both modes are separable: along each axis every output index reads
// NT input taps (bilinear 2, bicubic 4) with fixed weights, so one table per axis,
// computed once per call, drives forward and backward for all planes. Backward
// gathers through the inverted tables (Readers).
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/interp/interp_kernels.h"
#include "kernels/interp/interp_math.h"

namespace pw::interp {

// The taps of one axis.   idx, wt: (O, NT): input index (already clamped) and weight.
template <class T>
struct Taps {
  std::vector<int64_t> idx;
  std::vector<T> wt;
};

// torch's compute_source_index_and_lambda (upsample_bilinear2d).
template <class T>
inline Taps<T> linear_taps(int64_t in, int64_t out, bool align_corners) {
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
inline Taps<T> cubic_taps(int64_t in, int64_t out, bool align_corners) {
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

// The taps of one axis inverted: input index i is read by the outputs
// out[start[i] .. start[i+1]) with weights wt[..] (a clamped border index can
// appear twice for one output; both entries stay, as their weights add).
template <class T>
struct Readers {
  std::vector<int64_t> start, out;  // start: (in + 1)
  std::vector<T> wt;
};
template <class T>
inline Readers<T> invert(const Taps<T>& t, int64_t in, int nt) {
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

}  // namespace pw::interp
