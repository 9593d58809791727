// Shape ops: every one copies into a fresh contiguous tensor (patchwork has no
// strided views), except unsqueeze/squeeze/flatten, which are reshapes sharing
// storage. torch semantics throughout; dims may be negative (d + x.dim()).
// dtypes: f32, f64 and i64 (gradients flow for f32/f64 only).
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

// x: (d_0..d_{n-1}) -> y: (d_dims[0]..d_dims[n-1]); dims a permutation of 0..n-1.
Tensor permute(const Tensor& x, std::vector<int64_t> dims);
// permute swapping d0 and d1.
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
// xs: same shape except along dim -> y: sizes along dim summed.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// x -> pieces of sizes[i] along dim; sizes must sum to x.size(dim).
std::vector<Tensor> split(const Tensor& x, std::vector<int64_t> sizes, int64_t dim);
// x -> ceil(size/ceil(size/n)) pieces of ceil(size/n) along dim, the last smaller (torch.chunk).
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim);
// x -> x[.., start:start+length, ..] along dim; start may be negative.
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// x -> x[.., start:end:step, ..] along dim, Python rules: negative start/end count
// from the end, then both clamp to [0, size]; step >= 1.
Tensor slice(const Tensor& x, int64_t dim, int64_t start,
             int64_t end = std::numeric_limits<int64_t>::max(), int64_t step = 1);
// torch F.pad(x, pads, value=value), constant mode: pads = (lo, hi) pairs starting
// from the LAST dim; a negative pad crops. y.size(d) = x.size(d) + lo + hi.
Tensor pad(const Tensor& x, std::vector<int64_t> pads, double value = 0);
// Cyclic shift: y[.., (i + shift) mod n, ..] = x[.., i, ..] for each (shift, dim);
// empty dims: roll the flattened x by shifts[0].
Tensor roll(const Tensor& x, std::vector<int64_t> shifts, std::vector<int64_t> dims);
// Tiles x reps[d] times along d; extra leading reps add leading dims (torch.repeat).
Tensor repeat(const Tensor& x, std::vector<int64_t> reps);
// Broadcasts size-1 dims (and new leading dims) to `shape`; -1 keeps a dim.
Tensor expand(const Tensor& x, Shape shape);
// Inserts a size-1 dim at d (d in [-x.dim()-1, x.dim()]).
Tensor unsqueeze(const Tensor& x, int64_t d);
// Removes dim d if its size is 1; otherwise returns x's shape unchanged (torch).
Tensor squeeze(const Tensor& x, int64_t d);
// Merges dims start..end into one.
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);

}  // namespace pw
