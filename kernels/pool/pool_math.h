// Per-window index math of the pooling ops, shared by the CPU loops and (later)
// the CUDA kernels, so the window rules are written exactly once. All of it is
// PyTorch's (aten/src/ATen/native/Pool.h, AvgPoolKernel.cpp, MaxPoolKernel.cpp).
#pragma once
#include <cstdint>

#include "runtime/hd.h"

namespace pw::math {

// Output length of a pooling along one axis: torch's pooling_output_shape with
// dilation 1. Can return <= 0 when the kernel does not fit (callers check).
//   in: input length, k: kernel, s: stride, p: padding on each side.
PW_HD inline int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t num = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
  // floor division (torch's div_rtn): num may be negative for a kernel that does not fit.
  int64_t q = num / s;
  if ((num % s != 0) && ((num < 0) != (s < 0))) --q;
  int64_t out = q + 1;
  // ceil mode: the last window must start inside the input or its left padding,
  // else it would cover padding only.
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// One pooling window along one axis, for output index o.
//   lo, hi: the input range [lo, hi) it covers, clipped to the input.
//   padded: its length clipped to the padded input [-p, in + p) instead; the avg
//           divisor with count_include_pad. In ceil mode the last window may run
//           past in + p, and torch does not count that overhang.
struct PoolWindow {
  int64_t lo, hi, padded;
};
PW_HD inline PoolWindow pool_window(int64_t o, int64_t k, int64_t s, int64_t p, int64_t in) {
  int64_t lo = o * s - p;
  int64_t hi = lo + k < in + p ? lo + k : in + p;
  PoolWindow w;
  w.padded = hi - lo;
  w.lo = lo > 0 ? lo : 0;
  w.hi = hi < in ? hi : in;
  return w;
}

// Divisor of one avg-pool window (rows wh, columns ww).
PW_HD inline int64_t avg_pool_divisor(const PoolWindow& wh, const PoolWindow& ww, bool count_include_pad) {
  return count_include_pad ? wh.padded * ww.padded : (wh.hi - wh.lo) * (ww.hi - ww.lo);
}

// Max-pool comparison: a NaN wins and sticks (torch propagates NaN); on ties the
// first element in row-major window order wins.
template <class T> PW_HD inline bool max_pool_takes(T v, T best) { return v > best || v != v; }

}  // namespace pw::math
