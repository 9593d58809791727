// Index ops on the CPU.
//
// Forward copies rows (embedding, index_select) or elements (gather) in parallel.
// Backward is a scatter-add, where several outputs may land on one dx element.
// To stay race-free and deterministic it never lets two threads add into one
// element: each dx row (or element) is owned by one unit of work, which sums its
// contributions in increasing output order in a local buffer and adds that into
// dx once (so a second backward adds exactly the same value again).
#include <algorithm>
#include <string>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/index/index.h"
#include "kernels/index/index_cuda.h"
#include "kernels/shape/strided.h"  // dispatch_copy, parallel_ranges

namespace pw {

namespace {

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
  const Tensor idx = idx_any.device() == Device::CUDA ? idx_any.cpu() : idx_any;
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

// --- index_select (embedding is the case O = 1, n = V, K = D) ---

// y[o, j, :] = x[o, idx[j], :].   x: (O,n,K)  idx: (J)  y: (O,J,K)
template <class T>
void index_select_forward_cpu(T* y, const T* x, const int64_t* idx, int64_t O, int64_t n, int64_t J,
                              int64_t K) {
#pragma omp parallel for collapse(2) if (O * J * K > kParallelGrain)
  for (int64_t o = 0; o < O; ++o)
    for (int64_t j = 0; j < J; ++j) {
      const T* src = x + (o * n + idx[j]) * K;
      T* dst = y + (o * J + j) * K;
      for (int64_t k = 0; k < K; ++k) dst[k] = src[k];
    }
}

// Forward was y[o, j, :] = x[o, idx[j], :];  dx[o, v, :] += sum over j with idx[j] == v of dy[o, j, :].
// The j are bucketed by destination v (a stable counting sort), and each (o, v)
// row is one unit of work.   dx: (O,n,K)  dy: (O,J,K)
template <class T>
void index_select_backward_cpu(T* dx, const T* dy, const int64_t* idx, int64_t O, int64_t n, int64_t J,
                               int64_t K) {
  std::vector<int64_t> start(n + 1, 0), order(J);
  for (int64_t j = 0; j < J; ++j) ++start[idx[j] + 1];
  for (int64_t v = 0; v < n; ++v) start[v + 1] += start[v];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t j = 0; j < J; ++j) order[fill[idx[j]]++] = j;  // ascending j within a bucket
  std::vector<int64_t> hit;                                    // destinations that receive anything
  for (int64_t v = 0; v < n; ++v)
    if (start[v + 1] > start[v]) hit.push_back(v);
  int64_t H = (int64_t)hit.size();
  parallel_ranges(O * H, O * J * K > kParallelGrain, [&](int64_t t0, int64_t t1) {
    std::vector<T> acc(K);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t o = t / H, v = hit[t % H];
      const int64_t* js = order.data() + start[v];
      int64_t cnt = start[v + 1] - start[v];
      const T* first = dy + (o * J + js[0]) * K;
      for (int64_t k = 0; k < K; ++k) acc[k] = first[k];
      for (int64_t c = 1; c < cnt; ++c) {
        const T* row = dy + (o * J + js[c]) * K;
        for (int64_t k = 0; k < K; ++k) acc[k] += row[k];
      }
      T* drow = dx + (o * n + v) * K;
      for (int64_t k = 0; k < K; ++k) drow[k] += acc[k];
    }
  });
}

// y = x.index_select(dim, idx) viewed as (O,n,K) -> (O,J,K); embedding is O = 1.
struct IndexSelectFn final : Node {
  const char* op = "";
  Tensor idx;             // (J) flattened indices
  int64_t O = 0, n = 0, J = 0, K = 0;
  Tensor order, hit, hstart;  // CUDA only: idx bucketed by destination (see index_select_backward_cuda)
  int64_t H = 0;
  const char* name() const override { return op; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          index_select_backward_cuda(g[0].data<T>(), dy.data<T>(), order.data<int64_t>(), hit.data<int64_t>(),
                                     hstart.data<int64_t>(), O, n, J, K, H);
        return;
      }
      index_select_backward_cpu(g[0].data<T>(), dy.data<T>(), idx.data<int64_t>(), O, n, J, K);
    });
  }
};

Tensor index_select_op(const char* op, const Tensor& x, const Tensor& idx, const Shape& yshape, int64_t O,
                       int64_t n, int64_t K) {
  check_same_device(op, x, idx);
  int64_t J = idx.numel();
  Tensor y = empty(yshape, x.dtype(), x.device());
  dispatch_copy(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) index_select_forward_cuda(y.data<T>(), x.data<T>(), idx.data<int64_t>(), O, n, J, K);
      return;
    }
    index_select_forward_cpu(y.data<T>(), x.data<T>(), idx.data<int64_t>(), O, n, J, K);
  });
  if (auto node = record<IndexSelectFn>(y, {x, idx})) {
    node->op = op;
    node->idx = idx;
    node->O = O;
    node->n = n;
    node->J = J;
    node->K = K;
    if (x.device() == Device::CUDA) {  // bucket the indices by destination once, on the host (stable)
      const Tensor ih = idx.cpu();
      const int64_t* p = ih.data<int64_t>();
      std::vector<int64_t> start(n + 1, 0), order(J), hit, hstart;
      for (int64_t j = 0; j < J; ++j) ++start[p[j] + 1];
      for (int64_t v = 0; v < n; ++v) start[v + 1] += start[v];
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t j = 0; j < J; ++j) order[fill[p[j]]++] = j;  // ascending j within a bucket
      for (int64_t v = 0; v < n; ++v)
        if (start[v + 1] > start[v]) {
          hit.push_back(v);
          hstart.push_back(start[v]);
        }
      hstart.push_back(J);
      node->H = (int64_t)hit.size();
      node->order = from_indices(order, {J}).to(Device::CUDA);
      node->hit = from_indices(hit, {node->H}).to(Device::CUDA);
      node->hstart = from_indices(hstart, {node->H + 1}).to(Device::CUDA);
    }
  }
  return y;
}

// --- gather ---

// Where gather's lines sit in x. idx is viewed as (O,J,K) around dim; x's offset of
// idx's outer index o is xo[o], of its inner index k is xi[k] (x may be larger than
// idx outside dim), and moving one step along dim is sd elements of x.
struct GatherMap {
  std::vector<int64_t> xo, xi;
  int64_t O = 0, J = 0, K = 0, n = 0, sd = 0;
};

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

// y[o, j, k] = x[xo[o] + idx[o, j, k]*sd + xi[k]].   idx, y: (O,J,K)
template <class T>
void gather_forward_cpu(T* y, const T* x, const int64_t* idx, const GatherMap& m) {
#pragma omp parallel for collapse(2) if (m.O * m.J * m.K > kParallelGrain)
  for (int64_t o = 0; o < m.O; ++o)
    for (int64_t j = 0; j < m.J; ++j) {
      int64_t r = (o * m.J + j) * m.K;
      const T* xr = x + m.xo[o];
      for (int64_t k = 0; k < m.K; ++k) y[r + k] = xr[idx[r + k] * m.sd + m.xi[k]];
    }
}

// Forward was y[o, j, k] = x[xo[o] + idx[o, j, k]*sd + xi[k]].  A line (o, k) owns
// the dx elements x[xo[o] + v*sd + xi[k]] for all v; it sums its contributions per v
// (stamp marks the v this line touched) and adds each sum into dx once.
template <class T>
void gather_backward_cpu(T* dx, const T* dy, const int64_t* idx, const GatherMap& m) {
  parallel_ranges(m.O * m.K, m.O * m.J * m.K > kParallelGrain, [&](int64_t l0, int64_t l1) {
    std::vector<T> acc(m.n);
    std::vector<int64_t> stamp(m.n, -1), touched;
    for (int64_t line = l0; line < l1; ++line) {
      int64_t o = line / m.K, k = line % m.K;
      touched.clear();
      for (int64_t j = 0; j < m.J; ++j) {
        int64_t r = (o * m.J + j) * m.K + k, v = idx[r];
        if (stamp[v] != line) {
          stamp[v] = line;
          acc[v] = dy[r];
          touched.push_back(v);
        } else {
          acc[v] += dy[r];
        }
      }
      T* dxl = dx + m.xo[o] + m.xi[k];
      for (int64_t v : touched) dxl[v * m.sd] += acc[v];
    }
  });
}

// y = gather(x, dim, idx).
struct GatherFn final : Node {
  Tensor idx;
  GatherMap map;
  Tensor xo, xi;  // CUDA only: map.xo, map.xi on the device
  const char* name() const override { return "gather"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), "gather", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          gather_backward_cuda(g[0].data<T>(), dy.data<T>(), idx.data<int64_t>(), xo.data<int64_t>(),
                               xi.data<int64_t>(), map.O, map.J, map.K, map.n, map.sd);
        return;
      }
      gather_backward_cpu(g[0].data<T>(), dy.data<T>(), idx.data<int64_t>(), map);
    });
  }
};

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& idx) {
  PW_CHECK(weight.dim() == 2, "embedding: weight must be (V,D), got ", weight.str());
  int64_t V = weight.shape()[0], D = weight.shape()[1];
  check_indices("embedding", idx, V, "the " + std::to_string(V) + " rows of weight " + weight.str());
  Shape ys = idx.shape();
  ys.push_back(D);
  return index_select_op("embedding", weight, idx, ys, 1, V, D);
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
  return index_select_op("index_select", x, idx.reshape({-1}), ys, O, n, K);
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
  Tensor xo, xi;
  if (x.device() == Device::CUDA) {
    xo = from_indices(m.xo, {m.O}).to(Device::CUDA);
    xi = from_indices(m.xi, {m.K}).to(Device::CUDA);
  }
  dispatch_copy(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda)
        gather_forward_cuda(y.data<T>(), x.data<T>(), idx.data<int64_t>(), xo.data<int64_t>(), xi.data<int64_t>(), m.O,
                            m.J, m.K, m.sd);
      return;
    }
    gather_forward_cpu(y.data<T>(), x.data<T>(), idx.data<int64_t>(), m);
  });
  if (auto node = record<GatherFn>(y, {x, idx})) {
    node->idx = idx;
    node->map = std::move(m);
    node->xo = xo;
    node->xi = xi;
  }
  return y;
}

}  // namespace pw
