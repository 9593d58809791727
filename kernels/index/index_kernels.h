// The kernels of the index ops (embedding, index_select, gather), one
// declaration per kernel and device; the dispatch rows are in index.cpp.
// Indices are i64 and already checked to lie in [0, n) by the op.
//
// Backward is a scatter-add, deterministic on every device: each dx row (or
// element) is owned by one unit of work, which sums its contributions in
// increasing output order and adds that into dx once (the CPU's order on CUDA
// too, so the sums match bit for bit; no atomics). Only the destinations that
// some index names get anything, so a fresh dx is zeroed first (GradBuf's
// zero_if_fresh, autograd/function.h).
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/function.h"

namespace pw {

// index_select viewed as y[o, j, :] = x[o, idx[j], :]; embedding is O = 1, n = V, K = D.
struct IndexSelectGeom {
  const char* op = "";  // "embedding" or "index_select", for error messages
  int64_t O = 0, n = 0, J = 0, K = 0;
};

// y[o, j, :] = x[o, idx[j], :].   x: (O,n,K)  idx: (J) i64  y: (O,J,K).  dtypes: f32, f64, i64
void index_select_forward_cpu(Tensor& y, const Tensor& x, const Tensor& idx, const IndexSelectGeom& s);
void index_select_forward_cuda(Tensor& y, const Tensor& x, const Tensor& idx, const IndexSelectGeom& s);
// Forward was y[o, j, :] = x[o, idx[j], :].  dx[o, v, :] += sum over j with idx[j] == v of dy[o, j, :],
// the j bucketed by destination v (a stable counting sort on the host).   dx: (O,n,K)  dy: (O,J,K)
void index_select_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& idx, const IndexSelectGeom& s);
void index_select_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& idx, const IndexSelectGeom& s);

// Where gather's lines sit in x. idx is viewed as (O,J,K) around dim; x's offset of
// idx's outer index o is xo[o], of its inner index k is xi[k] (x may be larger than
// idx outside dim), and moving one step along dim is sd elements of x.
struct GatherMap {
  std::vector<int64_t> xo, xi;
  int64_t O = 0, J = 0, K = 0, n = 0, sd = 0;
};

// y[o, j, k] = x[xo[o] + idx[o, j, k]*sd + xi[k]].   idx, y: (O,J,K).  dtypes: f32, f64, i64
void gather_forward_cpu(Tensor& y, const Tensor& x, const Tensor& idx, const GatherMap& m);
void gather_forward_cuda(Tensor& y, const Tensor& x, const Tensor& idx, const GatherMap& m);
// Forward was gather.  dx[xo[o] + v*sd + xi[k]] += sum over j with idx[o,j,k] == v of dy[o,j,k].
void gather_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& idx, const GatherMap& m);
void gather_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& idx, const GatherMap& m);

}  // namespace pw
