// CUDA launchers of the reductions (and of the broadcast-gradient sums in
// kernels/elementwise/broadcast.cpp). Deterministic: every output is summed by one block
// (or one fixed column of threads) in an order fixed by the shapes; no atomics.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/check.h"
#include "autograd/tensor.h"

namespace pw {

constexpr int kMaxReduceGroups = 8;  // kept groups and reduced groups, each

// x's dims coalesced into groups (size-1 dims dropped, adjacent dims of one
// kind merged), outermost first, with x's element strides.
struct ReduceDesc {
  int n_keep = 0;                              // kept groups: the output, row-major
  int64_t keep_size[kMaxReduceGroups] = {}, keep_stride[kMaxReduceGroups] = {};
  int n_red = 0;                               // reduced groups
  int64_t red_size[kMaxReduceGroups] = {}, red_stride[kMaxReduceGroups] = {};
  int n_all = 0;                               // every group, for the backward's k -> o
  int64_t all_size[2 * kMaxReduceGroups] = {}, all_ostride[2 * kMaxReduceGroups] = {};  // ostride 0: reduced
  int64_t n_out = 1;                           // outputs
  int64_t n_redel = 1;                         // elements folded into each output
  int64_t numel = 1;                           // of x
  bool inner_reduced = true;                   // innermost group reduced (rows) or kept (columns)
};

// The groups of x (shape xs) reduced over the dims with reduced[d] set.
inline ReduceDesc make_reduce_desc(const char* op, const Shape& xs, const std::vector<bool>& reduced) {
  ReduceDesc d;
  struct G { int64_t size, stride; bool red; };
  std::vector<G> g;  // innermost first
  int64_t st = 1;
  for (int64_t k = (int64_t)xs.size() - 1; k >= 0; --k) {
    const bool r = reduced[k];
    if (xs[k] != 1) {
      if (!g.empty() && g.back().red == r) g.back().size *= xs[k];
      else g.push_back({xs[k], st, r});
    }
    st *= xs[k];
    (r ? d.n_redel : d.n_out) *= xs[k];
  }
  d.numel = d.n_out * d.n_redel;
  d.inner_reduced = g.empty() || g[0].red;
  int64_t ost = 1;
  std::vector<int64_t> ostride(g.size(), 0);
  for (size_t k = 0; k < g.size(); ++k)
    if (!g[k].red) { ostride[k] = ost; ost *= g[k].size; }
  for (size_t k = g.size(); k-- > 0;) {  // outermost first
    int& n = g[k].red ? d.n_red : d.n_keep;
    PW_CHECK(n < kMaxReduceGroups, op, ": shape ", shape_str(xs), " alternates reduced and kept dims too often for ",
             "the CUDA reduction (", kMaxReduceGroups, " groups of each kind at most)");
    (g[k].red ? d.red_size : d.keep_size)[n] = g[k].size;
    (g[k].red ? d.red_stride : d.keep_stride)[n] = g[k].stride;
    ++n;
    d.all_size[d.n_all] = g[k].size;
    d.all_ostride[d.n_all] = ostride[k];
    ++d.n_all;
  }
  return d;
}

// y[o] (= or, accumulate, +=) scale * sum of e(v) over the elements v of x that
// fold into output o; e(v) = v, or (v - center[o])^2 when center is given.
// Sums run in double.   x: d.numel elements, y, center: (d.n_out)
template <class T, class Out>
void reduce_sum_cuda(Out* y, const T* x, const double* center, const ReduceDesc& d, double scale, bool accumulate);
// dx[k] += scale * dy[o], or (center given) var_bwd(x[k], center[o], dy[o], scale);
// o the output element k folds into.   dx, x: (d.numel), dy, center: (d.n_out)
template <class T>
void reduce_backward_cuda(T* dx, const T* dy, const T* x, const double* center, const ReduceDesc& d, double scale);

// Largest value along R and its first index (a NaN wins).   x: (O,R,I), y, idx: (O,I)
template <class T> void max_dim_cuda(T* y, int64_t* idx, const T* x, int64_t O, int64_t R, int64_t I);
// dx[o, idx[o,i], i] += dy[o,i].   dx: (O,R,I), dy, idx: (O,I)
template <class T> void max_dim_backward_cuda(T* dx, const T* dy, const int64_t* idx, int64_t O, int64_t R, int64_t I);
// ties[0] = max(1, number of k with x[k] == best[0]).   x: (n), best, ties: (1)
template <class T> void count_equal_cuda(int64_t* ties, const T* x, const T* best, int64_t n);
// dx[k] += x[k] == best[0] ? dy[0] / ties[0] : 0.   dx, x: (n)
template <class T> void amax_backward_cuda(T* dx, const T* x, const T* best, const int64_t* ties, const T* dy, int64_t n);

}  // namespace pw
