// The reductions: public ops, autograd nodes and dispatch rows (device-agnostic;
// the kernels are in reduce_cpu.cpp and reduce_cuda.cu).
#include "kernels/reduce/reduce.h"

#include <algorithm>

#include "autograd/op_table.h"
#include "kernels/reduce/reduce_kernels.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

namespace {

// y = sum(x over dims) * scale.   x: any shape, y: r.plan.out_shape
using SumFwd = void(Tensor& y, const Tensor& x, const ReduceSpec& r, double scale);
using SumBwd = void(GradBuf dx, const Tensor& dy, const ReduceSpec& r, double scale);
PW_OP_ROW(kSum, "sum", "reduce", SumFwd, SumBwd, sum_forward_cpu, PW_CUDA_KERNEL(sum_forward_cuda),
          sum_backward_cpu, PW_CUDA_KERNEL(sum_backward_cuda));
PW_OP_ROW(kMean, "mean", "reduce", SumFwd, SumBwd, sum_forward_cpu, PW_CUDA_KERNEL(sum_forward_cuda),
          sum_backward_cpu, PW_CUDA_KERNEL(sum_backward_cuda));

// y = var(x over dims).   x: any shape, y: r.plan.out_shape, mean: (n_out) f64
using VarFwd = void(Tensor& y, Tensor& mean, const Tensor& x, const ReduceSpec& r, double denom);
using VarBwd = void(GradBuf dx, const Tensor& x, const Tensor& mean, const Tensor& dy, const ReduceSpec& r,
                    double scale);
PW_OP_ROW(kVar, "var", "reduce", VarFwd, VarBwd, var_forward_cpu, PW_CUDA_KERNEL(var_forward_cuda),
          var_backward_cpu, PW_CUDA_KERNEL(var_backward_cuda));

// values, indices = max(x, dim).   x: (O,R,I), values, indices: (O,I)
using MaxFwd = void(Tensor& values, Tensor& indices, const Tensor& x, detail::DimView v);
using MaxBwd = void(GradBuf dx, const Tensor& dy, const Tensor& indices, detail::DimView v);
PW_OP_ROW(kMax, "max", "reduce", MaxFwd, MaxBwd, max_forward_cpu, PW_CUDA_KERNEL(max_forward_cuda),
          max_backward_cpu, PW_CUDA_KERNEL(max_backward_cuda));

// y = amax(x).   x: any shape, y, ties: ()
using AmaxFwd = void(Tensor& y, Tensor& ties, const Tensor& x);
using AmaxBwd = void(GradBuf dx, const Tensor& x, const Tensor& y, const Tensor& ties, const Tensor& dy);
PW_OP_ROW(kAmax, "amax", "reduce", AmaxFwd, AmaxBwd, amax_forward_cpu, PW_CUDA_KERNEL(amax_forward_cuda),
          amax_backward_cpu, PW_CUDA_KERNEL(amax_backward_cuda));

// The reduction of x over dims, for every backend (validated by make_plan).
ReduceSpec make_spec(const char* op, const Shape& xs, const std::vector<int64_t>& dims, bool keepdim) {
  ReduceSpec r;
  r.op = op;
  r.plan = detail::make_plan(op, xs, dims, keepdim);
  r.x_shape = xs;
  r.reduced.assign(xs.size(), dims.empty());
  for (int64_t d : dims)
    if (!xs.empty()) r.reduced[detail::wrap_dim(op, d, xs)] = true;
  return r;
}

// y = sum(x over r) * scale  (scale = 1 for sum, 1/n for mean).
struct SumFn final : Node {
  const OpRow<SumFwd, SumBwd>* row = &kSum;
  ReduceSpec r;
  double scale = 1;
  const char* name() const override { return r.op; }
  // forward was y[o] = scale * sum_{k in o} x[k]; dx[k] += scale * dy[o]
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) row->bwd(dy.device())(g.buf(0), dy, r, scale);
  }
};

Tensor sum_impl(const OpRow<SumFwd, SumBwd>& row, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                bool is_mean) {
  ReduceSpec r = make_spec(row.info.name, x.shape(), dims, keepdim);
  // NOTE: mean over an empty set is 0/0 = NaN, as in torch.
  const double scale = is_mean ? 1.0 / (double)r.plan.n_red : 1.0;
  Tensor y = empty(r.plan.out_shape, x.dtype(), x.device());
  row.fwd(x.device())(y, x, r, scale);
  if (auto n = record<SumFn>(y, {x})) {
    n->row = &row;
    n->r = std::move(r);
    n->scale = scale;
  }
  return y;
}

// y = sum((x - mean)^2 over r) / (n - correction).
struct VarFn final : Node {
  ReduceSpec r;
  Tensor x;
  Tensor mean;       // (n_out) f64, on x's device
  double scale = 0;  // 2 / (n - correction)
  const char* name() const override { return "var"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kVar.bwd(dy.device())(g.buf(0), x, mean, dy, r, scale);
  }
  void release() override {
    x = Tensor();
    mean = Tensor();
  }
};

// y = max(x, dim).  x viewed as (O, R, I); values, indices: (O, I).
struct MaxFn final : Node {
  Tensor indices;  // (O, I) I64
  detail::DimView v;
  const char* name() const override { return "max"; }
  // forward was y[o,i] = x[o, idx[o,i], i]; dx[o, idx[o,i], i] += dy[o,i]
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kMax.bwd(dy.device())(g.buf(0), dy, indices, v);
  }
};

// y = max of all x.  x: any shape, y: ().
struct AmaxFn final : Node {
  Tensor x;
  Tensor y, ties;  // the max (y.detach()) and how many elements equal it, (), on x's device
  const char* name() const override { return "amax"; }
  // dx[k] += dy / ties where x[k] == max
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kAmax.bwd(dy.device())(g.buf(0), x, y, ties, dy);
  }
  void release() override {
    x = Tensor();
    y = Tensor();
    ties = Tensor();
  }
};

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(kSum, x, {}, false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(kSum, x, dims, keepdim, false);
}
Tensor mean(const Tensor& x) { return sum_impl(kMean, x, {}, false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(kMean, x, dims, keepdim, true);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  ReduceSpec r = make_spec("var", x.shape(), dims, keepdim);
  // NOTE: n - correction <= 0 (one element, unbiased) gives NaN, as in torch.
  const double denom = std::max<double>((double)r.plan.n_red - (unbiased ? 1 : 0), 0.0);
  Tensor y = empty(r.plan.out_shape, x.dtype(), x.device());
  Tensor m = empty({r.plan.n_out}, DType::F64, x.device());
  kVar.fwd(x.device())(y, m, x, r, denom);
  if (auto n = record<VarFn>(y, {x})) {
    n->r = std::move(r);
    n->x = x;
    n->mean = m;
    n->scale = 2.0 / denom;
  }
  return y;
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = detail::wrap_dim("max", dim, x.shape());
  const detail::DimView v = detail::dim_view(x.shape(), d);
  PW_CHECK(v.R > 0, "max: cannot take the max over dim ", dim, " of size 0 in shape ", shape_str(x.shape()));
  Shape out;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k != d) out.push_back(x.shape()[k]);
    else if (keepdim) out.push_back(1);
  }
  MaxResult res{empty(out, x.dtype(), x.device()), empty(out, DType::I64, x.device())};
  kMax.fwd(x.device())(res.values, res.indices, x, v);
  if (auto n = record<MaxFn>(res.values, {x})) {
    n->indices = res.indices;
    n->v = v;
  }
  return res;
}

Tensor amax(const Tensor& x) {
  PW_CHECK(x.numel() > 0, "amax: cannot take the max of an empty tensor of shape ", shape_str(x.shape()));
  Tensor y = empty({}, x.dtype(), x.device());
  Tensor ties = empty({}, DType::I64, x.device());
  kAmax.fwd(x.device())(y, ties, x);
  if (auto n = record<AmaxFn>(y, {x})) {
    n->x = x;
    n->y = y.detach();
    n->ties = ties;
  }
  return y;
}

}  // namespace pw
