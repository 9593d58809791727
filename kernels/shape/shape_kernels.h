// The kernels of the copying shape ops, one declaration per kernel and device;
// the dispatch rows are in shape.cpp. Each op is a list of strided pieces
// (strided.h's box loop):
//   forward   y[oy + i.sy]   = x[ox + i.sx]    for i over piece.size
//   backward dx[ox + i.sx] (+)= dy[oy + i.sy]   (the same loop, roles swapped)
// so one pair of kernels serves permute, slice, narrow, split, chunk, roll,
// repeat, expand and concat (one piece per input); pad fills its border first.
// Backward kernels keep the GradBuf contract (autograd/function.h): write a
// fresh buffer, add otherwise; the pieces of one op cover disjoint parts of dx,
// and an op whose pieces leave part of dx untouched zeroes a fresh dx first.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/function.h"
#include "kernels/shape/strided.h"

namespace pw {

// One strided copy between an output y and an input x (strides in elements).
struct Piece {
  Shape size;                     // iteration space
  std::vector<int64_t> sy, sx;    // y's and x's stride per dim of size (sx may be 0: broadcast)
  int64_t oy = 0, ox = 0;         // element offsets of the piece's origin
};

// What one shape op copies: its pieces, and its name for error messages.
struct CopyPlan {
  const char* op = "";
  std::vector<Piece> pieces;
};

// y[oy + i.sy] = x[ox + i.sx] for every piece.   dtypes: f32, f64, i64
void copy_forward_cpu(Tensor& y, const Tensor& x, const CopyPlan& c);
void copy_forward_cuda(Tensor& y, const Tensor& x, const CopyPlan& c);
// Forward was the copy above.  dx[ox + i.sx] (+)= dy[oy + i.sy]; where sx is 0 (expand,
// repeat) each dx element sums its dy elements in a fixed row-major order.
void copy_backward_cpu(GradBuf dx, const Tensor& dy, const CopyPlan& c);
void copy_backward_cuda(GradBuf dx, const Tensor& dy, const CopyPlan& c);
// y = value everywhere, then the copy above (pad's border and its box).
void pad_forward_cpu(Tensor& y, const Tensor& x, const CopyPlan& c, double value);
void pad_forward_cuda(Tensor& y, const Tensor& x, const CopyPlan& c, double value);

// --- The strided loop on CUDA, under the kernels above ---

// a[i.sa] (Acc: +=, else =) b[i.sb] for every multi-index i of the plan; with
// reduction dims (sa == 0, the backward of expand/repeat) each a element sums
// its b elements in the plan's row-major order (the CPU's order), one thread per
// a element: deterministic, no atomics.   a, b: device pointers already offset.
// T: float, double, int64_t.
template <bool Acc, class T> void strided_cuda(T* a, const T* b, const StridedPlan& p);

}  // namespace pw
