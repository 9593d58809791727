// Numpy broadcasting, shared by every op that combines tensors of different
// shapes: the result shape, a loop plan for the forward kernels, and the
// reduction that folds a broadcast gradient back onto an input.
//
// Shapes are aligned at their last dim; a dim of size 1 (or a missing leading
// dim) stretches to the other operand's size: {3,1,5} with {4,5} -> {3,4,5}.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "autograd/dispatch.h"
#include "autograd/tensor.h"

namespace pw {

// The broadcast of a and b; a pw::Error naming `op` and both shapes when a dim
// pair is neither equal nor 1.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// dst += alpha * src summed over the dims that broadcasting stretched, so that
// the sum fits dst's shape (the backward of every broadcasting op).
//   src: the broadcast shape S;  dst: any shape that broadcasts to S.
// Deterministic: every dst element is summed in an order fixed by the shapes
// alone (never by the thread count); running sums are kept in double.
void sum_to_shape_acc(Tensor& dst, const Tensor& src);
void sum_to_shape_acc(Tensor& dst, const Tensor& src, double alpha);
// dst += (a * b) summed down to dst's shape, without materialising a * b
// (the gradient of a broadcast factor: dscale += sum(dy * x)).   a, b: S
void sum_prod_to_shape_acc(Tensor& dst, const Tensor& a, const Tensor& b);

// The loop plan of an elementwise kernel: `out` (contiguous, shape `out`) and
// up to kMaxOperands inputs, each of a shape that broadcasts to `out`.
//
// The shapes are collapsed first (adjacent dims merge whenever every operand
// walks them as one), so the work becomes runs along the inner dim in which
// each input moves with stride 1 (it has that dim) or 0 (it is broadcast
// there). Kernels turn those two strides into compile-time constants with
// with_unit_stride(), so each run is a plain loop the compiler vectorises; the
// only index arithmetic is one odometer step per run, never a division per
// element.
struct BroadcastPlan {
  static constexpr int kMaxOperands = 4;
  int n = 0;                               // number of inputs
  Shape size;                              // collapsed dims of out, inner dim last
  std::array<Shape, kMaxOperands> stride;  // stride[k][d]: input k's step along dim d (0 = broadcast)
  std::array<int64_t, kMaxOperands> inner_stride{};  // stride[k].back(): 0 or 1
  int64_t numel = 0;                       // of out

  BroadcastPlan(const Shape& out, std::initializer_list<const Shape*> inputs);

  // Calls run(out_offset, in_offset, len) for every run of `len` consecutive
  // out elements; in_offset[k] is input k's element at the run's start. Runs
  // split across threads when the work pays for it; they never overlap in out.
  template <class F> void for_each_run(F&& run) const;
};

// f(std::integral_constant<int64_t, 0 or 1>): a runtime unit stride made a
// compile-time one, so `p[j * S]` compiles to a vector load or a broadcast.
template <class F> inline void with_unit_stride(int64_t s, F&& f) {
  if (s) f(std::integral_constant<int64_t, 1>{});
  else f(std::integral_constant<int64_t, 0>{});
}

// --- implementation ---

template <class F> void BroadcastPlan::for_each_run(F&& run) const {
  if (numel == 0) return;
  const int nd = (int)size.size();
  const int64_t L = size[nd - 1];
  // Long inner dims split into chunks so that few-row shapes still spread
  // across threads; chunk boundaries do not change any result.
  const int64_t C = L <= 16384 ? L : 8192;
  const int64_t nchunks = (L + C - 1) / C;
  const int64_t items = numel / L * nchunks;
  // Items [begin, end): an odometer over the outer dims, set once at `begin`
  // by one decomposition, then advanced by carries.
  auto range = [&](int64_t begin, int64_t end) {
    Shape idx(nd, 0);
    std::array<int64_t, kMaxOperands> off{};
    int64_t chunk = begin % nchunks, row = begin / nchunks;
    int64_t out_off = row * L;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = row % size[d];
      row /= size[d];
      for (int k = 0; k < n; ++k) off[k] += idx[d] * stride[k][d];
    }
    for (int64_t it = begin; it < end; ++it) {
      std::array<int64_t, kMaxOperands> o;
      for (int k = 0; k < n; ++k) o[k] = off[k] + chunk * C * inner_stride[k];
      run(out_off + chunk * C, o, std::min(C, L - chunk * C));
      if (++chunk < nchunks) continue;
      chunk = 0;
      out_off += L;
      for (int d = nd - 2; d >= 0; --d) {
        for (int k = 0; k < n; ++k) off[k] += stride[k][d];
        if (++idx[d] < size[d]) break;
        for (int k = 0; k < n; ++k) off[k] -= size[d] * stride[k][d];
        idx[d] = 0;
      }
    }
  };
  if (numel <= kParallelGrain) {
    range(0, items);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = items * t / nt, end = items * (t + 1) / nt;
    if (begin < end) range(begin, end);
  }
}

}  // namespace pw
