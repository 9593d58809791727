// The kernels of the reductions, one declaration per kernel and device; the
// dispatch rows are in reduce.cpp. Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise.
//
// CPU: kernels/reduce/reduce_plan.h's coalesced plan, sums in double in an
// order fixed by the shapes. CUDA (and sum_to_shape_cuda's broadcast-gradient
// sums in kernels/elementwise/elementwise_cuda.cu): every output is summed by one
// block (or one fixed column of threads) in an order fixed by the shapes; no atomics.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/check.h"
#include "autograd/function.h"
#include "autograd/tensor.h"
#include "kernels/reduce/reduce_plan.h"

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

// --- Raw CUDA launchers (device pointers; also used by sum_to_shape_cuda) ---

// y[o] (= or, accumulate, +=) scale * sum of e(v) over the elements v of x that
// fold into output o; e(v) = v, or (v - center[o])^2 when center is given.
// Sums run in double.   x: d.numel elements, y, center: (d.n_out)
template <class T, class Out>
void reduce_sum_cuda(Out* y, const T* x, const double* center, const ReduceDesc& d, double scale, bool accumulate);

// --- Tensor-level kernels, identical signatures per device ---

// One reduction of x over a set of dims, as each backend needs it: the CPU walks
// `plan`, CUDA builds its ReduceDesc from the shape and the reduced-dim mask.
struct ReduceSpec {
  const char* op = "";
  detail::ReducePlan plan;     // CPU; plan.out_shape is the output's shape
  Shape x_shape;               // CUDA
  std::vector<bool> reduced;   // CUDA: reduced[d] for each dim of x_shape
};

// y[o] = scale * sum of x over the elements folding into o (scale 1: sum, 1/n: mean).
// x: r.x_shape, y: r.plan.out_shape
void sum_forward_cpu(Tensor& y, const Tensor& x, const ReduceSpec& r, double scale);
void sum_forward_cuda(Tensor& y, const Tensor& x, const ReduceSpec& r, double scale);
// Forward was y = sum(x) * scale.  dx[k] (+)= scale * dy[o], o the output k folds into.
void sum_backward_cpu(GradBuf dx, const Tensor& dy, const ReduceSpec& r, double scale);
void sum_backward_cuda(GradBuf dx, const Tensor& dy, const ReduceSpec& r, double scale);

// mean[o] = the mean of x over o's elements (in double), then
// y[o] = sum((x - mean[o])^2) / denom, two passes (no cancellation).
// x: r.x_shape, y: r.plan.out_shape, mean: (n_out) f64
void var_forward_cpu(Tensor& y, Tensor& mean, const Tensor& x, const ReduceSpec& r, double denom);
void var_forward_cuda(Tensor& y, Tensor& mean, const Tensor& x, const ReduceSpec& r, double denom);
// Forward was y = var(x).  dx[k] (+)= var_bwd(x[k], mean[o], dy[o], scale), scale = 2 / denom.
void var_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& mean, const Tensor& dy, const ReduceSpec& r,
                      double scale);
void var_backward_cuda(GradBuf dx, const Tensor& x, const Tensor& mean, const Tensor& dy, const ReduceSpec& r,
                       double scale);

// Largest value along R and its first index (a NaN wins).   x: (O,R,I), values, indices: (O,I) (indices i64)
void max_forward_cpu(Tensor& values, Tensor& indices, const Tensor& x, detail::DimView v);
void max_forward_cuda(Tensor& values, Tensor& indices, const Tensor& x, detail::DimView v);
// Forward was values[o,i] = x[o, indices[o,i], i].  dx[o, indices[o,i], i] += dy[o,i]; a scatter
// (the other dx elements get nothing), so a fresh dx is zeroed first.   dx: (O,R,I), dy, indices: (O,I)
void max_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& indices, detail::DimView v);
void max_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& indices, detail::DimView v);

// y = the largest value of x (NaN wins), ties = max(1, number of elements equal to it).
// x: any shape, y: () x's dtype, ties: () i64
void amax_forward_cpu(Tensor& y, Tensor& ties, const Tensor& x);
void amax_forward_cuda(Tensor& y, Tensor& ties, const Tensor& x);
// Forward was y = amax(x).  dx[k] (+)= x[k] == y ? dy / ties : 0.   dx, x: any shape, y, ties, dy: ()
void amax_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& y, const Tensor& ties, const Tensor& dy);
void amax_backward_cuda(GradBuf dx, const Tensor& x, const Tensor& y, const Tensor& ties, const Tensor& dy);

}  // namespace pw
