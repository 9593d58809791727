// The index ops: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in index_cpu.cpp and index_cuda.cu).
#include "kernels/index/index.h"

#include <algorithm>
#include <string>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/index/index_kernels.h"
#include "kernels/shape/strided.h"  // contiguous_strides

namespace pw {

namespace {

// y = index_select(x, idx) viewed as (O,n,K) -> (O,J,K); embedding is O = 1.
using IndexSelectFwd = void(Tensor& y, const Tensor& x, const Tensor& idx, const IndexSelectGeom& s);
using IndexSelectBwd = void(GradBuf dx, const Tensor& dy, const Tensor& idx, const IndexSelectGeom& s);
PW_OP_ROW(kEmbedding, "embedding", "index", IndexSelectFwd, IndexSelectBwd, index_select_forward_cpu,
          PW_CUDA_KERNEL(index_select_forward_cuda), index_select_backward_cpu,
          PW_CUDA_KERNEL(index_select_backward_cuda));
PW_OP_ROW(kIndexSelect, "index_select", "index", IndexSelectFwd, IndexSelectBwd, index_select_forward_cpu,
          PW_CUDA_KERNEL(index_select_forward_cuda), index_select_backward_cpu,
          PW_CUDA_KERNEL(index_select_backward_cuda));

// y = gather(x, dim, idx).   idx, y: (O,J,K) around dim
using GatherFwd = void(Tensor& y, const Tensor& x, const Tensor& idx, const GatherMap& m);
using GatherBwd = void(GradBuf dx, const Tensor& dy, const Tensor& idx, const GatherMap& m);
PW_OP_ROW(kGather, "gather", "index", GatherFwd, GatherBwd, gather_forward_cpu, PW_CUDA_KERNEL(gather_forward_cuda),
          gather_backward_cpu, PW_CUDA_KERNEL(gather_backward_cuda));

int64_t wrap_dim(const char* op, int64_t d, int64_t n, const Tensor& x) {
  int64_t w = d < 0 ? d + n : d;
  PW_CHECK(w >= 0 && w < n, op, ": dim ", d, " is out of range for ", x.str(), " (valid dims are ",
           -n, "..", n - 1, ")");
  return w;
}

// Checks idx is i64 with every value in [0, n); the error names the first bad
// value, its position in idx and the valid range. `what` says what n counts.
// NOTE: CUDA indices are copied to the host to be checked (a sync): a bad index
// must be a pw::Error naming it, not an out-of-bounds read in a kernel.
void check_indices(const char* op, const Tensor& idx_any, int64_t n, const std::string& what) {
  const Tensor idx = idx_any.cpu();
  PW_CHECK(idx.dtype() == DType::I64, op, ": indices must be i64, got ", idx.str(),
           "; convert them with .to(DType::I64)");
  const int64_t* p = idx.data<int64_t>();
  int64_t m = idx.numel(), bad = m;
#pragma omp parallel for reduction(min : bad) if (m > kParallelGrain)
  for (int64_t i = 0; i < m; ++i)
    if (p[i] < 0 || p[i] >= n) bad = std::min(bad, i);
  if (bad == m) return;
  Shape pos(idx.dim());
  for (int64_t k = idx.dim() - 1, r = bad; k >= 0; --k) {
    pos[k] = r % idx.shape()[k];
    r /= idx.shape()[k];
  }
  PW_FAIL(op, ": index ", p[bad], " at position ", shape_str(pos), " of indices ", idx.str(),
          " is out of range for ", what, " (valid indices are 0..", n - 1, ")");
}

struct IndexSelectFn final : Node {
  const OpRow<IndexSelectFwd, IndexSelectBwd>* row = nullptr;
  Tensor idx;  // (J) flattened indices
  IndexSelectGeom s;
  const char* name() const override { return s.op; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) row->bwd(dy.device())(g.buf(0), dy, idx, s);
  }
};

Tensor index_select_op(const OpRow<IndexSelectFwd, IndexSelectBwd>& row, const Tensor& x, const Tensor& idx,
                       const Shape& yshape, int64_t O, int64_t n, int64_t K) {
  const IndexSelectGeom s{row.info.name, O, n, idx.numel(), K};
  check_same_device(s.op, x, idx);
  Tensor y = empty(yshape, x.dtype(), x.device());
  row.fwd(x.device())(y, x, idx, s);
  if (auto node = record<IndexSelectFn>(y, {x, idx})) {
    node->row = &row;
    node->idx = idx;
    node->s = s;
  }
  return y;
}

GatherMap gather_map(const Shape& xshape, const Shape& ishape, int64_t dim) {
  GatherMap m;
  auto xs = contiguous_strides(xshape);
  int64_t nd = (int64_t)xshape.size();
  // Offsets in x of every multi-index over ishape's dims [lo, hi).
  auto offsets = [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> off{0};
    for (int64_t k = lo; k < hi; ++k) {
      std::vector<int64_t> next;
      next.reserve(off.size() * ishape[k]);
      for (int64_t base : off)
        for (int64_t i = 0; i < ishape[k]; ++i) next.push_back(base + i * xs[k]);
      off.swap(next);
    }
    return off;
  };
  m.xo = offsets(0, dim);
  m.xi = offsets(dim + 1, nd);
  m.O = (int64_t)m.xo.size();
  m.K = (int64_t)m.xi.size();
  m.J = ishape[dim];
  m.n = xshape[dim];
  m.sd = xs[dim];
  return m;
}

// y = gather(x, dim, idx).
struct GatherFn final : Node {
  Tensor idx;
  GatherMap map;
  const char* name() const override { return "gather"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kGather.bwd(dy.device())(g.buf(0), dy, idx, map);
  }
};

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& idx) {
  PW_CHECK(weight.dim() == 2, "embedding: weight must be (V,D), got ", weight.str());
  int64_t V = weight.shape()[0], D = weight.shape()[1];
  check_indices("embedding", idx, V, "the " + std::to_string(V) + " rows of weight " + weight.str());
  Shape ys = idx.shape();
  ys.push_back(D);
  return index_select_op(kEmbedding, weight, idx, ys, 1, V, D);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx) {
  dim = wrap_dim("index_select", dim, x.dim(), x);
  PW_CHECK(idx.dim() <= 1, "index_select: indices must be 1-D, got ", idx.str());
  int64_t n = x.shape()[dim];
  check_indices("index_select", idx, n,
                "dim " + std::to_string(dim) + " of " + x.str() + " (size " + std::to_string(n) + ")");
  const Shape& xs = x.shape();
  int64_t O = numel_of(Shape(xs.begin(), xs.begin() + dim));
  int64_t K = numel_of(Shape(xs.begin() + dim + 1, xs.end()));
  Shape ys = xs;
  ys[dim] = idx.numel();
  return index_select_op(kIndexSelect, x, idx.reshape({-1}), ys, O, n, K);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx) {
  check_same_device("gather", x, idx);
  dim = wrap_dim("gather", dim, x.dim(), x);
  PW_CHECK(idx.dim() == x.dim(), "gather: indices ", idx.str(), " must have the same number of dims as ",
           x.str());
  for (int64_t d = 0; d < x.dim(); ++d)
    PW_CHECK(d == dim || idx.shape()[d] <= x.shape()[d], "gather: indices ", idx.str(),
             " are larger than ", x.str(), " in dim ", d, " (only dim ", dim, " may be larger)");
  int64_t n = x.shape()[dim];
  check_indices("gather", idx, n,
                "dim " + std::to_string(dim) + " of " + x.str() + " (size " + std::to_string(n) + ")");
  GatherMap m = gather_map(x.shape(), idx.shape(), dim);
  Tensor y = empty(idx.shape(), x.dtype(), x.device());
  kGather.fwd(x.device())(y, x, idx, m);
  if (auto node = record<GatherFn>(y, {x, idx})) {
    node->idx = idx;
    node->map = std::move(m);
  }
  return y;
}

}  // namespace pw
