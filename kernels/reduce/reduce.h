// Reductions. Dims may be negative; an empty dims list reduces every dim.
// keepdim keeps each reduced dim as size 1. Float sums accumulate in double in
// an order fixed by the shapes, so results never depend on the thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

Tensor sum(const Tensor& x);                                                               // x: any -> ()
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);       // x: any -> x without dims
Tensor mean(const Tensor& x);                                                              // x: any -> ()
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);      // x: any -> x without dims
// unbiased divides by n-1 (torch's default), else by n.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased = true, bool keepdim = false);

// Largest value along dim and its index (first one on ties; NaN wins).
// values: x without dim, x's dtype; indices: same shape, I64. Gradient flows to the argmax.
struct MaxResult {
  Tensor values, indices;
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
// Largest value of all of x -> (); the gradient is shared evenly by tied maxima (torch's amax).
Tensor amax(const Tensor& x);

}  // namespace pw
