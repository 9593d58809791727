// CUDA launchers of the broadcasting elementwise ops (binary arithmetic,
// where, masked_fill) and their gradients. Shapes come collapsed by a
// BroadcastPlan (kernels/elementwise/broadcast.h) into a BcastDesc.
#pragma once
#include <cstdint>

namespace pw {

constexpr int kMaxBcastDims = 8;  // collapsed dims; more is an error naming the op

// out: size[0..nd) (row-major, inner last); input k steps stride[k][d] along dim d (0 = broadcast).
struct BcastDesc {
  int nd = 0;
  int64_t size[kMaxBcastDims] = {};
  int64_t stride[3][kMaxBcastDims] = {};
  int64_t numel = 0;
};

// What y[i] is, from the inputs' elements u = in0, v = in1, w = in2 (a nonzero test is "!= 0").
enum class BcastKind : int {
  Add,         // u + v
  Sub,         // u - v
  Mul,         // u * v            (also dy * other: mul's gradient)
  Div,         // u / v            (also dy / b: div's gradient for a)
  DivGradB,    // div_bwd_b(dy = u, a = v, b = w)
  Where,       // u != 0 ? v : w   (u: cond converted to T)
  WhereGradA,  // v != 0 ? u : 0   (u: dy, v: cond)
  WhereGradB,  // v != 0 ? 0 : u   (also masked_fill's gradient, v: mask)
  MaskedFill,  // v != 0 ? value : u   (u: x, v: mask)
};

// y[i] (= or, accumulate, +=) kind(in0, in1, in2) over the broadcast.   y: d's out; in2 may be
// null for the two-input kinds.
template <class T>
void bcast_cuda(BcastKind k, T* y, const T* in0, const T* in1, const T* in2, const BcastDesc& d, double value,
                bool accumulate);

}  // namespace pw
