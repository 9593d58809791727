// Activations.   x: any shape, y: same shape.
#pragma once
#include "autograd/tensor.h"

namespace pw {

Tensor gelu(const Tensor& x);  // exact (erf) form

}  // namespace pw
