// dropout and drop_path: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in dropout_cpu.cpp and dropout_cuda.cu).
#include "kernels/dropout/dropout.h"

#include <vector>

#include "autograd/op_table.h"
#include "kernels/dropout/dropout_kernels.h"
#include "kernels/dropout/dropout_math.h"

namespace pw {

namespace {

// y = dropout(x) with the mask of Philox counters base, base + 1, ...   x, y: any shape
using DropoutFwd = void(Tensor& y, const Tensor& x, uint64_t seed, uint64_t base, double p);
using DropoutBwd = void(GradBuf dx, const Tensor& dy, uint64_t seed, uint64_t base, double p);
PW_OP_ROW(kDropout, "dropout", "dropout", DropoutFwd, DropoutBwd, dropout_forward_cpu,
          PW_CUDA_KERNEL(dropout_forward_cuda), dropout_backward_cpu, PW_CUDA_KERNEL(dropout_backward_cuda));

// y = x * factor per sample.   x, y: (B, M)  factor: (B)
using DropPathFwd = void(Tensor& y, const Tensor& x, const Tensor& factor);
using DropPathBwd = void(GradBuf dx, const Tensor& dy, const Tensor& factor);
PW_OP_ROW(kDropPath, "drop_path", "dropout", DropPathFwd, DropPathBwd, drop_path_forward_cpu,
          PW_CUDA_KERNEL(drop_path_forward_cuda), drop_path_backward_cpu, PW_CUDA_KERNEL(drop_path_backward_cuda));

void check_p(const char* op, double p) {
  PW_CHECK(p >= 0.0 && p <= 1.0, op, ": drop probability p must be in [0, 1], got ", p);
}

// y = dropout(x).   x, y: any shape; the mask is re-derived from (seed, base).
struct DropoutFn final : Node {
  uint64_t seed = 0, base = 0;
  double p = 0;
  const char* name() const override { return "dropout"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kDropout.bwd(dy.device())(g.buf(0), dy, seed, base, p);
  }
};

// y[b] = factor[b] * x[b].   x, y: (B, M); factor: (B), each 0 or 1/(1-p).
struct DropPathFn final : Node {
  Tensor factor;  // (B), x's dtype and device
  const char* name() const override { return "drop_path"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kDropPath.bwd(dy.device())(g.buf(0), dy, factor);
  }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* g) {
  check_p("dropout", p);
  if (!training || p == 0.0) return x;
  Generator& gen = g ? *g : default_generator();
  const int64_t n = x.numel();
  const uint64_t base = reserve_counters(gen, (uint64_t)(n + 3) / 4), seed = gen.seed;  // 4 draws per counter
  Tensor y = empty_like(x);
  kDropout.fwd(x.device())(y, x, seed, base, p);
  if (auto node = record<DropoutFn>(y, {x})) {
    node->seed = seed;
    node->base = base;
    node->p = p;
  }
  return y;
}

Tensor drop_path(const Tensor& x, double p, bool training, Generator* g) {
  check_p("drop_path", p);
  PW_CHECK(x.dim() >= 1, "drop_path: expected an input with a batch dim (B,...), got a 0-d tensor ", x.str());
  if (!training || p == 0.0) return x;
  Generator& gen = g ? *g : default_generator();
  const int64_t B = x.size(0);
  const uint64_t base = reserve_counters(gen, (uint64_t)B);
  // The B factors are drawn on the host (B numbers), then stored in x's dtype on x's device.
  std::vector<double> f(B);
  for (int64_t b = 0; b < B; ++b)
    f[b] = math::dropout_keep(philox_uniform(gen.seed, base + (uint64_t)b), (float)p) ? math::dropout_scale(p) : 0.0;
  const Tensor factor = from_vector(f, {B}, x.dtype()).to(x.device());
  Tensor y = empty_like(x);
  kDropPath.fwd(x.device())(y, x, factor);
  if (auto node = record<DropPathFn>(y, {x})) node->factor = factor;
  return y;
}

}  // namespace pw
