// Index ops: rows or elements picked by an i64 index tensor. Indices must lie in
// [0, n) (no negative wrap-around, as torch); anything else is a pw::Error naming
// the op, the bad value and its position. Gradients flow to x / weight only;
// backward sums repeated indices deterministically (independent of threads).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// weight: (V,D), idx: i64 any shape -> y: idx.shape + (D); y[.., :] = weight[idx[..], :].
Tensor embedding(const Tensor& weight, const Tensor& idx);
// x: (.., n, ..) with n at dim, idx: i64 (J) -> y: (.., J, ..); y[.., j, ..] = x[.., idx[j], ..].
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx);
// torch.gather. idx: i64, same rank as x, idx.size(d) <= x.size(d) for d != dim
// -> y: idx.shape; y[i] = x[i with its dim-coordinate replaced by idx[i]].
Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx);

}  // namespace pw
