// Activations.   x: any shape, y: same shape (glu: halves one dim).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

Tensor relu(const Tensor& x);       // max(x, 0); gradient 0 at 0
Tensor gelu(const Tensor& x);       // exact (erf) form
Tensor gelu_tanh(const Tensor& x);  // tanh approximation (PyTorch's approximate="tanh")
Tensor silu(const Tensor& x);       // x * sigmoid(x)
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor hardswish(const Tensor& x);  // x * relu6(x + 3) / 6
// x: (..., 2H, ...) with the 2H at `dim` -> y: (..., H, ...); y = a * sigmoid(b)
// for a, b the first and second halves. An odd size at `dim` is an error.
Tensor glu(const Tensor& x, int64_t dim = -1);

}  // namespace pw
