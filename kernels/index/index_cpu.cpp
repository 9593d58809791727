// CPU kernels of the index ops: compute only, no graph, no device test.
//
// Forward copies rows (embedding, index_select) or elements (gather) in parallel.
// Backward is a scatter-add, where several outputs may land on one dx element.
// To stay race-free and deterministic it never lets two threads add into one
// element: each dx row (or element) is owned by one unit of work, which sums its
// contributions in increasing output order in a local buffer and adds that into
// dx once (so a second backward adds exactly the same value again).
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/index/index_kernels.h"
#include "kernels/shape/strided.h"  // dispatch_copy, parallel_ranges

namespace pw {

namespace {

// y[o, j, :] = x[o, idx[j], :].   x: (O,n,K)  idx: (J)  y: (O,J,K)
template <class T>
void index_select_forward_loop(T* y, const T* x, const int64_t* idx, int64_t O, int64_t n, int64_t J, int64_t K) {
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
void index_select_backward_loop(T* dx, const T* dy, const int64_t* idx, int64_t O, int64_t n, int64_t J,
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

// y[o, j, k] = x[xo[o] + idx[o, j, k]*sd + xi[k]].   idx, y: (O,J,K)
template <class T>
void gather_forward_loop(T* y, const T* x, const int64_t* idx, const GatherMap& m) {
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
void gather_backward_loop(T* dx, const T* dy, const int64_t* idx, const GatherMap& m) {
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

}  // namespace

void index_select_forward_cpu(Tensor& y, const Tensor& x, const Tensor& idx, const IndexSelectGeom& s) {
  dispatch_copy(x.dtype(), s.op, [&](auto tag) {
    using T = decltype(tag);
    index_select_forward_loop(y.data<T>(), x.data<T>(), idx.data<int64_t>(), s.O, s.n, s.J, s.K);
  });
}

void index_select_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& idx, const IndexSelectGeom& s) {
  dx.zero_if_fresh();  // a scatter: rows no index names get nothing
  dispatch_float(dy.dtype(), s.op, [&](auto tag) {
    using T = decltype(tag);
    index_select_backward_loop(dx.data<T>(), dy.data<T>(), idx.data<int64_t>(), s.O, s.n, s.J, s.K);
  });
}

void gather_forward_cpu(Tensor& y, const Tensor& x, const Tensor& idx, const GatherMap& m) {
  dispatch_copy(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    gather_forward_loop(y.data<T>(), x.data<T>(), idx.data<int64_t>(), m);
  });
}

void gather_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& idx, const GatherMap& m) {
  dx.zero_if_fresh();  // a scatter: elements no index names get nothing
  dispatch_float(dy.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    gather_backward_loop(dx.data<T>(), dy.data<T>(), idx.data<int64_t>(), m);
  });
}

}  // namespace pw
