// CPU helpers shared by the reduction-shaped families (reduce, softmax, loss,
// norm): dim checking, the (outer, reduced, inner) view of one dim, the
// coalesced plan of a multi-dim reduction, and a lane-split row sum.
//
// Determinism: every helper here fixes its summation order from the shapes
// alone. Threads split the work over outputs (or over fixed-size chunks whose
// partial sums are then added in chunk order), never over one running sum, so
// results are bit-identical for any OMP_NUM_THREADS.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/check.h"
#include "autograd/dispatch.h"
#include "autograd/tensor.h"

namespace pw::detail {

// Maps a possibly negative dim into [0, rank); a 0-d tensor accepts -1 and 0
// (as torch does) and maps them to 0.
inline int64_t wrap_dim(const char* op, int64_t d, const Shape& s) {
  int64_t n = std::max<int64_t>((int64_t)s.size(), 1);
  PW_CHECK(d >= -n && d < n, op, ": dim ", d, " out of range for a tensor of shape ", shape_str(s),
           " (expected a dim in [", -n, ", ", n - 1, "])");
  return d < 0 ? d + n : d;
}

// x viewed as (O, R, I) around one dim: O = prod(shape[:dim]), R = shape[dim],
// I = prod(shape[dim+1:]). Element (o, r, i) sits at (o*R + r)*I + i.
struct DimView {
  int64_t O = 1, R = 1, I = 1;
};
inline DimView dim_view(const Shape& s, int64_t dim) {
  DimView v;
  if (s.empty()) return v;  // 0-d: one element, R = 1
  for (int64_t d = 0; d < dim; ++d) v.O *= s[d];
  v.R = s[dim];
  for (int64_t d = dim + 1; d < (int64_t)s.size(); ++d) v.I *= s[d];
  return v;
}

// sum_{i<n} f(i) in double, accumulated in 16 interleaved lanes: the compiler
// vectorises it without -ffast-math (four independent 4-wide chains hide the add
// latency), and the order depends on n alone.
template <class F>
inline double lane_sum(int64_t n, F f) {
  constexpr int L = 16;
  double acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) acc[j] += (double)f(i + j);
  double tail = 0;
  for (; i < n; ++i) tail += (double)f(i);
  for (int w = L / 2; w > 0; w /= 2)  // pairwise fold of the lanes
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0] + tail;
}

// sum_{i<n} f(i) for rows of a few hundred elements (norm and attention rows):
// 8 lanes of T within blocks of kShortBlock elements, each block folded pairwise
// and added in double. Cheaper than lane_sum's double lanes, as precise for float
// rows up to a block long (~n/8 ulp), and never worse than block/8 ulp per block
// for long rows. The order depends on n alone.
constexpr int64_t kShortBlock = 512;
template <class T, class F>
inline double short_sum(int64_t n, F f) {
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kShortBlock) {
    const int64_t b1 = std::min(n, b0 + kShortBlock);
    T acc[8] = {};
    int64_t i = b0;
    for (; i + 8 <= b1; i += 8)
      for (int l = 0; l < 8; ++l) acc[l] += f(i + l);
    T tail = 0;
    for (; i < b1; ++i) tail += f(i);
    total += (double)(((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + tail);
  }
  return total;
}

// max_{i<n} x[i] in 8 lanes (vectorises to max instructions). A NaN may be
// skipped; callers whose result must carry NaN get it from the NaN element itself
// (exp(NaN - m) is NaN). n >= 1.
template <class T>
inline T row_max(const T* x, int64_t n) {
  T acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = x[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  for (; i < n; ++i) acc[0] = x[i] > acc[0] ? x[i] : acc[0];
  T m = acc[0];
  for (int j = 1; j < 8; ++j) m = acc[j] > m ? acc[j] : m;
  return m;
}

// Calls f(offset) for every index of an odometer over (sizes, strides), last
// dim fastest. An empty odometer has exactly one index, offset 0.
template <class F>
inline void for_each_offset(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides, F&& f) {
  const int k = (int)sizes.size();
  if (k == 0) { f(int64_t(0)); return; }
  int64_t idx[16] = {0};
  int64_t off = 0;
  for (;;) {
    f(off);
    int j = k - 1;
    for (; j >= 0; --j) {
      if (++idx[j] < sizes[j]) { off += strides[j]; break; }
      off -= (sizes[j] - 1) * strides[j];
      idx[j] = 0;
    }
    if (j < 0) return;
  }
}

// A reduction of x over a set of dims, coalesced: size-1 dims vanish and
// adjacent dims of the same kind merge, so x reads as alternating kept and
// reduced groups; e.g. (B,C,H,W) over {2,3} is kept (B*C) x reduced (H*W).
// The innermost group is a contiguous run of `inner` elements:
//  - inner_reduced: each output sums runs of `inner` (rows), one run per
//    index of the `red` odometer, at outer_offset(o) + red offset;
//  - otherwise the run holds `inner` consecutive outputs (columns), and each
//    index of the `red` odometer adds one run into them.
struct ReducePlan {
  Shape out_shape;                                  // x's shape without (or, keepdim, with 1 at) reduced dims
  int64_t n_out = 1;                                // output elements
  int64_t n_red = 1;                                // elements folded into each output
  int64_t inner = 1;                                // length of the innermost contiguous run
  bool inner_reduced = true;                        // see above
  std::vector<int64_t> outer_sizes, outer_strides;  // kept groups, minus a kept innermost one
  std::vector<int64_t> red_sizes, red_strides;      // reduced groups, minus a reduced innermost one
  int64_t n_outer = 1;                              // prod(outer_sizes)

  // Offset in x of outer index o (row-major over outer_sizes).
  int64_t outer_offset(int64_t o) const {
    int64_t off = 0;
    for (int j = (int)outer_sizes.size() - 1; j >= 0; --j) {
      off += (o % outer_sizes[j]) * outer_strides[j];
      o /= outer_sizes[j];
    }
    return off;
  }
};

// Empty `dims` reduces every dim (torch's sum(x, dim=[])). Repeated dims are an error.
inline ReducePlan make_plan(const char* op, const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
  const int64_t n = (int64_t)s.size();
  std::vector<bool> red(std::max<int64_t>(n, 1), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(op, d, s);
    PW_CHECK(!red[w], op, ": dim ", d, " appears more than once in the dims of a reduction over shape ",
             shape_str(s));
    red[w] = true;
  }
  ReducePlan p;
  for (int64_t d = 0; d < n; ++d) {
    if (!red[d]) p.out_shape.push_back(s[d]);
    else if (keepdim) p.out_shape.push_back(1);
  }
  // Groups from the innermost dim outwards, with their row-major strides.
  struct Group { int64_t size, stride; bool red; };
  std::vector<Group> g;
  int64_t stride = 1;
  for (int64_t d = n - 1; d >= 0; --d) {
    if (s[d] != 1) {
      if (!g.empty() && g.back().red == red[d]) g.back().size *= s[d];
      else g.push_back({s[d], stride, (bool)red[d]});
    }
    stride *= s[d];
  }
  for (int64_t d = 0; d < n; ++d) (red[d] ? p.n_red : p.n_out) *= s[d];
  if (g.empty()) return p;  // every dim has size 1: a copy
  p.inner = g[0].size;
  p.inner_reduced = g[0].red;
  for (size_t k = g.size(); k-- > 1;) {  // outermost first
    if (g[k].red) { p.red_sizes.push_back(g[k].size); p.red_strides.push_back(g[k].stride); }
    else { p.outer_sizes.push_back(g[k].size); p.outer_strides.push_back(g[k].stride); p.n_outer *= g[k].size; }
  }
  return p;
}

// Chunk length of the split sum of a single long row; fixed, so that the
// partial sums, and the order they are added in, never depend on the threads.
constexpr int64_t kSumChunk = 1 << 14;
// Columns handled together by one task in the column (inner kept) layout.
constexpr int64_t kColBlock = 256;

// out[o] = sum of e(v, o) over the elements v of x that fold into output o,
// accumulated in double in an order fixed by the plan.
template <class T, class E>
void reduce_into(const ReducePlan& p, const T* x, double* out, E e) {
  const int64_t total = p.n_out * p.n_red;
  if (p.n_red == 0) {  // an empty reduction (a size-0 reduced dim) sums to 0
    std::fill(out, out + p.n_out, 0.0);
    return;
  }
  if (p.inner_reduced) {
    const int64_t L = p.inner;
    if (p.red_sizes.empty() && p.n_out < 64 && L >= 2 * kSumChunk) {
      // Few long rows (sum of everything): fixed chunks summed in parallel, then in order.
      const int64_t nc = (L + kSumChunk - 1) / kSumChunk;
      std::vector<double> part(p.n_out * nc);
#pragma omp parallel for
      for (int64_t t = 0; t < p.n_out * nc; ++t) {
        const int64_t o = t / nc, c0 = (t % nc) * kSumChunk, len = std::min(kSumChunk, L - c0);
        const T* r = x + p.outer_offset(o) + c0;
        part[t] = lane_sum(len, [&](int64_t i) { return e(r[i], o); });
      }
      for (int64_t o = 0; o < p.n_out; ++o) {
        double s = 0;
        for (int64_t c = 0; c < nc; ++c) s += part[o * nc + c];
        out[o] = s;
      }
      return;
    }
#pragma omp parallel for if (total > kParallelGrain)
    for (int64_t o = 0; o < p.n_out; ++o) {
      const T* base = x + p.outer_offset(o);
      double s = 0;
      for_each_offset(p.red_sizes, p.red_strides, [&](int64_t off) {
        const T* r = base + off;
        s += lane_sum(L, [&](int64_t i) { return e(r[i], o); });
      });
      out[o] = s;
    }
    return;
  }
  // Columns: each task owns a block of consecutive outputs and adds one run per reduced index.
  const int64_t I = p.inner, nb = (I + kColBlock - 1) / kColBlock;
#pragma omp parallel for if (total > kParallelGrain)
  for (int64_t t = 0; t < p.n_outer * nb; ++t) {
    const int64_t o = t / nb, i0 = (t % nb) * kColBlock, len = std::min(kColBlock, I - i0);
    const T* base = x + p.outer_offset(o) + i0;
    const int64_t ob = o * I + i0;  // first output of this block
    double acc[kColBlock];
    for (int64_t i = 0; i < len; ++i) acc[i] = 0;
    // Runs are added four at a time: a quarter of the loads and stores of acc.
    const T* r[4];
    int cnt = 0;
    auto flush = [&] {
      if (cnt == 4) {
        for (int64_t i = 0; i < len; ++i)
          acc[i] += ((double)e(r[0][i], ob + i) + (double)e(r[1][i], ob + i)) +
                    ((double)e(r[2][i], ob + i) + (double)e(r[3][i], ob + i));
      } else {
        for (int k = 0; k < cnt; ++k)
          for (int64_t i = 0; i < len; ++i) acc[i] += (double)e(r[k][i], ob + i);
      }
      cnt = 0;
    };
    for_each_offset(p.red_sizes, p.red_strides, [&](int64_t off) {
      r[cnt++] = base + off;
      if (cnt == 4) flush();
    });
    flush();
    for (int64_t i = 0; i < len; ++i) out[ob + i] = acc[i];
  }
}

// dx[k] += e(k, o) (Acc) or dx[k] = e(k, o) for every element k of x, o the
// output it folds into. Each dx element is written once, so any split over
// threads is exact.
template <bool Acc = true, class T, class E>
void broadcast_into(const ReducePlan& p, T* dx, E e) {
  auto put = [](T& d, T v) {
    if constexpr (Acc) d += v;
    else d = v;
  };
  const int64_t total = p.n_out * p.n_red;
  if (total == 0) return;
  if (p.inner_reduced) {
    const int64_t L = p.inner;
    if (p.red_sizes.empty()) {
      // (n_out, L) rows: split long rows too, so sum-of-everything backward runs in parallel.
      const int64_t nc = (L + kSumChunk - 1) / kSumChunk;
#pragma omp parallel for if (total > kParallelGrain)
      for (int64_t t = 0; t < p.n_out * nc; ++t) {
        const int64_t o = t / nc, c0 = (t % nc) * kSumChunk, len = std::min(kSumChunk, L - c0);
        const int64_t k0 = p.outer_offset(o) + c0;
        for (int64_t i = 0; i < len; ++i) put(dx[k0 + i], e(k0 + i, o));
      }
      return;
    }
#pragma omp parallel for if (total > kParallelGrain)
    for (int64_t o = 0; o < p.n_out; ++o) {
      const int64_t base = p.outer_offset(o);
      for_each_offset(p.red_sizes, p.red_strides, [&](int64_t off) {
        const int64_t k0 = base + off;
        for (int64_t i = 0; i < L; ++i) put(dx[k0 + i], e(k0 + i, o));
      });
    }
    return;
  }
  const int64_t I = p.inner, nb = (I + kColBlock - 1) / kColBlock;
#pragma omp parallel for if (total > kParallelGrain)
  for (int64_t t = 0; t < p.n_outer * nb; ++t) {
    const int64_t o = t / nb, i0 = (t % nb) * kColBlock, len = std::min(kColBlock, I - i0);
    const int64_t base = p.outer_offset(o) + i0, ob = o * I + i0;
    for_each_offset(p.red_sizes, p.red_strides, [&](int64_t off) {
      const int64_t k0 = base + off;
      for (int64_t i = 0; i < len; ++i) put(dx[k0 + i], e(k0 + i, ob + i));
    });
  }
}

}  // namespace pw::detail
