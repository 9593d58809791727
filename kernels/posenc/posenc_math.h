// Per-element math of the position-encoding ops, for the CPU loops and the CUDA
// kernels alike (T = float or double).
#pragma once
#include <cstdint>

#include "runtime/hd.h"

namespace pw::math {

// The pair (x0, x1) rotated by the angle with cosine c and sine s (RoPE).
template <class T> PW_HD inline void rope_fwd(T x0, T x1, T c, T s, T& y0, T& y1) {
  y0 = x0 * c - x1 * s;
  y1 = x0 * s + x1 * c;
}
// Forward was rope_fwd: the transpose rotation of dy.
template <class T> PW_HD inline void rope_bwd(T dy0, T dy1, T c, T s, T& dx0, T& dx1) {
  dx0 = dy0 * c + dy1 * s;
  dx1 = dy1 * c - dy0 * s;
}

// Transformer-XL's rel_shift: row i of x (N, 2N-1) holds the distances N-1, N-2, ..,
// -(N-1) (column c <-> distance N-1-c); y[i,j] takes the one of distance i - j, column
// j + N-1 - i. The backward inverts it: dx[i,c] = dy[i, c - (N-1) + i] where that is in [0,N).
PW_HD inline int64_t rel_shift_col(int64_t i, int64_t j, int64_t N) { return j + N - 1 - i; }
PW_HD inline int64_t rel_shift_key(int64_t i, int64_t c, int64_t N) { return c - (N - 1) + i; }

}  // namespace pw::math
