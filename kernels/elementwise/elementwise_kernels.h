// The kernels of the elementwise family: binary broadcasting arithmetic, the
// one-input maps (scalar, unary and the activations relu ... hardswish, see
// unary.h), where / masked_fill, and the broadcast gradient sums. One
// declaration per kernel and device; the dispatch rows are in elementwise.cpp
// (and activation.cpp). Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "autograd/function.h"
#include "kernels/elementwise/unary_math.h"

namespace pw {

enum class BinaryKind : int { Add, Sub, Mul, Div };
inline const char* binary_name(BinaryKind k) {
  constexpr const char* names[] = {"add", "sub", "mul", "div"};
  return names[(int)k];
}

// --- binary, broadcasting ---
// y = a op b.   a: A, b: B, y: broadcast(A, B)
void binary_forward_cpu(Tensor& y, const Tensor& a, const Tensor& b, BinaryKind k);
void binary_forward_cuda(Tensor& y, const Tensor& a, const Tensor& b, BinaryKind k);
// Forward was y = a op b.  dx (+)= the gradient of input i (0: a, 1: b) summed down to its shape:
// add: dy; sub: dy, -dy; mul: dy * b, dy * a; div: dy / b, -dy * a / b^2.
// dx: A or B; dy: broadcast(A, B); a, b: the inputs (mul and div only; add and sub need none)
void binary_backward_cpu(GradBuf dx, int i, const Tensor& dy, const Tensor& a, const Tensor& b, BinaryKind k);
void binary_backward_cuda(GradBuf dx, int i, const Tensor& dy, const Tensor& a, const Tensor& b, BinaryKind k);

// --- one input: y = op(x) (unary_math.h) ---
// x, y: any shape (n elements)
void unary_forward_cpu(Tensor& y, const Tensor& x, UnaryKind k, UnaryParams p);
void unary_forward_cuda(Tensor& y, const Tensor& x, UnaryKind k, UnaryParams p);
// dx (+)= unary_bwd(s, dy), s the saved x, or y where unary_saves_y(k).   dx, s, dy: (n)
void unary_backward_cpu(GradBuf dx, const Tensor& s, const Tensor& dy, UnaryKind k, UnaryParams p);
void unary_backward_cuda(GradBuf dx, const Tensor& s, const Tensor& dy, UnaryKind k, UnaryParams p);

// --- selection; c: the condition (or mask) in y's dtype, nonzero = true ---
// y = c ? a : b.   c: C, a: A, b: B, y: broadcast(C, A, B)
void where_forward_cpu(Tensor& y, const Tensor& c, const Tensor& a, const Tensor& b);
void where_forward_cuda(Tensor& y, const Tensor& c, const Tensor& a, const Tensor& b);
// Forward was y = c ? a : b.  dx (+)= (i == 0 ? (c ? dy : 0) : (c ? 0 : dy)) summed down to dx's shape.
// dx: A or B; dy: broadcast(C, A, B); c: C. masked_fill's gradient is i = 1 with c its mask.
void where_backward_cpu(GradBuf dx, int i, const Tensor& dy, const Tensor& c);
void where_backward_cuda(GradBuf dx, int i, const Tensor& dy, const Tensor& c);
// y = m ? value : x.   x: X, m: M (broadcasts to X), y: X
void masked_fill_forward_cpu(Tensor& y, const Tensor& x, const Tensor& m, double value);
void masked_fill_forward_cuda(Tensor& y, const Tensor& x, const Tensor& m, double value);

// --- broadcast gradient sums (kernels/elementwise/broadcast.h) ---
// dst += alpha * src summed down to dst's shape.   src: S, dst: a shape that broadcasts to S
void sum_to_shape_cpu(Tensor& dst, const Tensor& src, double alpha);
void sum_to_shape_cuda(Tensor& dst, const Tensor& src, double alpha);
// dst += a * b summed down to dst's shape.   a, b: S, dst: a shape that broadcasts to S
void sum_prod_to_shape_cpu(Tensor& dst, const Tensor& a, const Tensor& b);
void sum_prod_to_shape_cuda(Tensor& dst, const Tensor& a, const Tensor& b);

// --- for the CUDA kernels: a broadcast collapsed as by BroadcastPlan (broadcast.h) ---
constexpr int kMaxBcastDims = 8;  // collapsed dims; more is an error naming the op

// out: size[0..nd) (row-major, inner last); input k steps stride[k][d] along dim d (0 = broadcast).
struct BcastDesc {
  int nd = 0;
  int64_t size[kMaxBcastDims] = {};
  int64_t stride[3][kMaxBcastDims] = {};
  int64_t numel = 0;
};
// The collapsed broadcast of up to 3 inputs to out; a pw::Error naming op when more
// than kMaxBcastDims dims remain (broadcast.cpp).
BcastDesc make_bcast_desc(const char* op, const Shape& out, std::initializer_list<const Shape*> inputs);

}  // namespace pw
