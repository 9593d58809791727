// The normalisations: public ops, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in norm_cpu.cpp and norm_cuda.cu).
#include "kernels/norm/norm.h"

#include <algorithm>

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/norm/norm_kernels.h"

namespace pw {

namespace {

// y = layer_norm(x, w, b).   x, y: (N,C)  w, b: (C) or undefined  mean, rstd: (N)
using LayerNormFwd = void(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                          int64_t N, int64_t C, double eps);
using LayerNormBwd = void(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& mean,
                          const Tensor& rstd, const Tensor& w, int64_t N, int64_t C);
PW_OP_ROW(kLayerNorm, "layer_norm", "norm", LayerNormFwd, LayerNormBwd, layer_norm_forward_cpu,
          PW_CUDA_KERNEL(layer_norm_forward_cuda), layer_norm_backward_cpu, PW_CUDA_KERNEL(layer_norm_backward_cuda));

// y = batch_norm(x, w, b).   x, y: (B,C,S)  w, b, rm, rv: (C) or undefined  mean, rstd: (C)
using BatchNormFwd = void(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                          const Tensor& rm, const Tensor& rv, int64_t B, int64_t C, int64_t S, bool training,
                          double momentum, double eps, BatchNormSync* sync, double* count);
using BatchNormBwd = void(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& mean,
                          const Tensor& rstd, const Tensor& w, int64_t B, int64_t C, int64_t S, bool training,
                          BatchNormSync* sync, double count);
PW_OP_ROW(kBatchNorm, "batch_norm", "norm", BatchNormFwd, BatchNormBwd, batch_norm_forward_cpu,
          PW_CUDA_KERNEL(batch_norm_forward_cuda), batch_norm_backward_cpu, PW_CUDA_KERNEL(batch_norm_backward_cuda));

// Checks an optional per-channel parameter: undefined, or (C) with x's dtype.
void check_param(const char* op, const char* what, const Tensor& p, const Tensor& x, int64_t C) {
  if (!p.defined()) return;
  check_same_device(op, x, p);
  PW_CHECK(p.dim() == 1 && p.size(0) == C, op, ": ", what, " ", p.str(), " must have shape (C) = [", C,
           "] for input ", x.str());
  check_same_dtype(op, x, p);
}

// y = layer_norm(x, weight, bias).   x: (N,C)  weight, bias: (C) or undefined  mean, rstd: (N)
struct LayerNormFn final : Node {
  Tensor x, weight, mean, rstd;
  int64_t N = 0, C = 0;
  const char* name() const override { return "layer_norm"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0) && !g.needs(1) && !g.needs(2)) return;
    kLayerNorm.bwd(dy.device())(g.buf(0), g.buf(1), g.buf(2), dy, x, mean, rstd, weight, N, C);
  }
  void release() override { x = weight = mean = rstd = Tensor(); }
};

// y = batch_norm(x, weight, bias).   x: (B,C,S)  weight, bias: (C) or undefined  mean, rstd: (C)
// training: mean/rstd are the batch statistics (gradient flows through them);
// eval: they came from the running statistics (constants).
// sync (SyncBN): the statistics were every process's; backward sums over them too, and
// runs on every process (a collective), even where no gradient is needed here.
struct BatchNormFn final : Node {
  Tensor x, weight, mean, rstd;
  int64_t B = 0, C = 0, S = 0;
  bool training = true;
  BatchNormSync* sync = nullptr;
  double count = 0;  // the normalised set's size (global with sync)
  const char* name() const override { return "batch_norm"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!sync && !g.needs(0) && !g.needs(1) && !g.needs(2)) return;
    kBatchNorm.bwd(dy.device())(g.buf(0), g.buf(1), g.buf(2), dy, x, mean, rstd, weight, B, C, S, training, sync,
                                count);
  }
  void release() override { x = weight = mean = rstd = Tensor(); }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  PW_CHECK(x.dim() >= 1, op, ": expected an input of shape (...,C), got a 0-d tensor ", x.str());
  const int64_t C = x.size(-1), N = C ? x.numel() / C : 0;
  check_param(op, "weight", weight, x, C);
  check_param(op, "bias", bias, x, C);
  PW_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Shape rows(x.shape().begin(), x.shape().end() - 1);
  Tensor y = empty_like(x), mean = empty(rows, x.dtype(), x.device()), rstd = empty(rows, x.dtype(), x.device());
  kLayerNorm.fwd(x.device())(y, mean, rstd, x, weight, bias, N, C, eps);
  if (auto n = record<LayerNormFn>(y, {x, weight, bias})) {
    n->x = x;
    n->weight = weight;
    n->mean = mean;
    n->rstd = rstd;
    n->N = N;
    n->C = C;
  }
  return y;
}

std::vector<double> combine_moments(const std::vector<std::vector<double>>& parts) {
  PW_CHECK(!parts.empty() && parts[0].size() % 3 == 0, "combine_moments: expected parts of (count, mean, M2) triples");
  std::vector<double> r = parts[0];
  for (size_t p = 1; p < parts.size(); ++p) {
    PW_CHECK(parts[p].size() == r.size(), "combine_moments: part ", p, " has ", parts[p].size(), " values, part 0 ",
             r.size(), "; every process must have the same channels (the same model)");
    for (size_t c = 0; c + 2 < r.size(); c += 3) {
      const double na = r[c], nb = parts[p][c], n = na + nb;
      if (nb == 0) continue;
      const double delta = parts[p][c + 1] - r[c + 1];
      r[c + 1] = na == 0 ? parts[p][c + 1] : r[c + 1] + delta * (nb / n);
      r[c + 2] = r[c + 2] + parts[p][c + 2] + delta * delta * (na * nb / n);
      r[c] = n;
    }
  }
  return r;
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps, BatchNormSync* sync) {
  const char* op = "batch_norm";
  PW_CHECK(x.dim() >= 2 && x.dim() <= 4, op, ": expected an input of shape (B,C), (B,C,L) or (B,C,H,W), got ",
           x.str());
  const int64_t B = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(B * C, 1);
  check_param(op, "weight", weight, x, C);
  check_param(op, "bias", bias, x, C);
  check_param(op, "running_mean", running_mean, x, C);
  check_param(op, "running_var", running_var, x, C);
  PW_CHECK(running_mean.defined() == running_var.defined(), op,
           ": running_mean and running_var must both be given or both be undefined, got ", running_mean.str(),
           " and ", running_var.str());
  PW_CHECK(training || running_mean.defined(), op,
           ": eval mode (training=false) normalises with the running statistics, but none were given for input ",
           x.str());
  PW_CHECK(!training || B * S > 1, op, ": training needs more than 1 value per channel to estimate a variance, got input ",
           x.str());
  PW_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  if (!training) sync = nullptr;  // eval normalises with the running statistics: nothing to share
  Tensor y = empty_like(x), mean = empty({C}, x.dtype(), x.device()), rstd = empty({C}, x.dtype(), x.device());
  double count = (double)(B * S);
  kBatchNorm.fwd(x.device())(y, mean, rstd, x, weight, bias, running_mean, running_var, B, C, S, training, momentum,
                             eps, sync, &count);
  if (auto n = record<BatchNormFn>(y, {x, weight, bias})) {
    n->x = x;
    n->weight = weight;
    n->mean = mean;
    n->rstd = rstd;
    n->B = B;
    n->C = C;
    n->S = S;
    n->training = training;
    n->sync = sync;
    n->count = count;
  }
  return y;
}

}  // namespace pw
