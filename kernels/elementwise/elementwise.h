// Arithmetic, elementwise.  Binary ops broadcast numpy-style (see
// kernels/elementwise/broadcast.h): a: A, b: B, y: broadcast_shapes(A, B). Both operands
// must share a dtype (f32 or f64); a mismatch is an error, never a promotion.
// Scalar and unary forms keep x's shape.
#pragma once
#include "autograd/tensor.h"

namespace pw {

// --- binary, broadcasting: a: A, b: B -> y: broadcast(A, B) ---
Tensor add(const Tensor& a, const Tensor& b);  // a + b
Tensor sub(const Tensor& a, const Tensor& b);  // a - b
Tensor mul(const Tensor& a, const Tensor& b);  // a * b
Tensor div(const Tensor& a, const Tensor& b);  // a / b

// --- with a scalar: x: any shape -> y: same shape ---
Tensor add(const Tensor& x, double s);  // x + s
Tensor mul(const Tensor& x, double s);  // x * s

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& x, double s);
Tensor operator+(double s, const Tensor& x);
Tensor operator-(const Tensor& x, double s);
Tensor operator-(double s, const Tensor& x);
Tensor operator*(const Tensor& x, double s);
Tensor operator*(double s, const Tensor& x);
Tensor operator/(const Tensor& x, double s);  // x / s (a true division, not x * (1/s))
Tensor operator/(double s, const Tensor& x);  // s / x
Tensor operator-(const Tensor& x);            // neg(x)

// --- unary: x: any shape -> y: same shape ---
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);                       // 1 / sqrt(x)
Tensor abs(const Tensor& x);                         // gradient 0 at x = 0
Tensor pow(const Tensor& x, double p);               // x^p
Tensor clamp(const Tensor& x, double lo, double hi);  // gradient 0 outside [lo, hi]; needs lo <= hi

// --- selection ---
// y = cond ? a : b, all three broadcast together: y: broadcast(C, A, B).
// cond: any dtype (f32, f64, i64), nonzero = true; it gets no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// y = mask ? value : x.   x: X, mask: any dtype, a shape that broadcasts to X; y: X.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace pw
