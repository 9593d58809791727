// Softmax along one dim (negative allowed).   x: any shape, y: same shape.
// Numerically stable (the row max is subtracted before exp); backward reuses the saved output.
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

Tensor softmax(const Tensor& x, int64_t dim = -1);      // y = exp(x) / sum(exp(x)) along dim
Tensor log_softmax(const Tensor& x, int64_t dim = -1);  // y = x - logsumexp(x) along dim

}  // namespace pw
