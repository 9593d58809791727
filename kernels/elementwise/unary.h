// The one-input elementwise ops, device-agnostic: every scalar and unary op of
// the elementwise family (add(x, s), exp, pow, ...) and the activations relu,
// gelu, gelu_tanh, silu, sigmoid, tanh, hardswish. Each has its own dispatch
// row (named after the op); all rows share one kernel pair per device that
// takes the op's UnaryKind and UnaryParams (kernels/elementwise/unary_math.h):
//
//   PW_UNARY_ROW(kExp, "exp", "elementwise");   // PW_OP_ROW with the shared kernels
//   Tensor exp(const Tensor& x) { return unary(kExp, x, UnaryKind::Exp); }
#pragma once
#include "autograd/function.h"
#include "autograd/op_table.h"
#include "kernels/elementwise/elementwise_kernels.h"
#include "kernels/elementwise/unary_math.h"

namespace pw {

// y = op(x).   x, y: any shape (n elements)
using UnaryFwd = void(Tensor& y, const Tensor& x, UnaryKind k, UnaryParams p);
// Forward was y = op(x).  dx (+)= op'(s) * dy, s = y where unary_saves_y(k), else x.   dx, s, dy: (n)
using UnaryBwd = void(GradBuf dx, const Tensor& s, const Tensor& dy, UnaryKind k, UnaryParams p);
using UnaryRow = OpRow<UnaryFwd, UnaryBwd>;

// A unary op's row: PW_OP_ROW with the kernels every unary row shares.
#define PW_UNARY_ROW(var, name, family)                                                                        \
  PW_OP_ROW(var, name, family, ::pw::UnaryFwd, ::pw::UnaryBwd, ::pw::unary_forward_cpu,                       \
            PW_CUDA_KERNEL(::pw::unary_forward_cuda), ::pw::unary_backward_cpu,                                \
            PW_CUDA_KERNEL(::pw::unary_backward_cuda))

// y = op(x) through `row`, recorded for autograd.   x: any shape, y: same shape
Tensor unary(const UnaryRow& row, const Tensor& x, UnaryKind k, UnaryParams p = {});

}  // namespace pw
