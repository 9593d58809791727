// The kernels of the optimizer family: AdamW and SGD updates, the global L2
// norm of many tensors, clipping to a norm, and the weight EMA. One declaration
// per kernel and device; the dispatch rows are in optim.cpp. Every kernel takes
// ALL the tensors of a step at once (the CUDA ones update every tensor in one
// multi-tensor launch), updates them in place, runs on the tensors' device and,
// on CUDA, never synchronises. Element math: optim_math.h (PyTorch's formulas
// and operation order, so both backends agree to float rounding and the CPU
// results are bit-identical from run to run and thread count to thread count).
//
// Every tensor of one call lives on one device. CPU: f32 or f64, per tensor;
// CUDA: f32 or f64, one dtype for all tensors of a call.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

// One parameter of an AdamW step.   p, g, m, v: the same shape
struct AdamWSlot {
  Tensor p;       // parameter, updated in place
  Tensor g;       // its gradient
  Tensor m, v;    // exp_avg, exp_avg_sq, updated in place
  int64_t step;   // this parameter's step count AFTER this step (>= 1): bias correction
  bool decay;     // apply weight decay (not to norms, biases, tokens)
};
struct AdamWArgs {
  double lr, beta1, beta2, eps, weight_decay;
};
// torch.optim.AdamW, decoupled weight decay; the bias corrections are computed
// per tensor from its own step count, in double, then cast to the tensor's type.
void adamw_step_cpu(const std::vector<AdamWSlot>& ts, const AdamWArgs& a);
void adamw_step_cuda(const std::vector<AdamWSlot>& ts, const AdamWArgs& a);

// One parameter of an SGD step.   p, g, buf: the same shape
struct SgdSlot {
  Tensor p;       // parameter, updated in place
  Tensor g;       // its gradient
  Tensor buf;     // momentum buffer (updated in place), undefined without momentum
  bool decay;     // apply (L2) weight decay
  bool first;     // the buffer's first step: it becomes a copy of the update
};
struct SgdArgs {
  double lr, momentum, weight_decay;
  bool nesterov;
};
// torch.optim.SGD (dampening 0).
void sgd_step_cpu(const std::vector<SgdSlot>& ts, const SgdArgs& a);
void sgd_step_cuda(const std::vector<SgdSlot>& ts, const SgdArgs& a);

// norm[0] = sqrt(sum over k of sum xs[k]^2), accumulated in double in a fixed
// order (CPU: tensor by tensor, each serially; CUDA: per-chunk block sums, then
// one block folds them). norm: (1) f64 on the xs' device; xs may be empty (0).
void global_norm_cpu(Tensor& norm, const std::vector<Tensor>& xs);
void global_norm_cuda(Tensor& norm, const std::vector<Tensor>& xs);

// xs[k] *= coef for every k when coef = max_norm / (norm[0] + 1e-6) < 1, else
// nothing (torch.nn.utils.clip_grad_norm_). norm: (1) f64 on the xs' device,
// read there (no sync on CUDA).
void clip_to_norm_cpu(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm);
void clip_to_norm_cuda(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm);

// ema[k] = d*ema[k] + (1-d)*xs[k].   ema[k], xs[k]: the same shape
void ema_update_cpu(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay);
void ema_update_cuda(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay);

}  // namespace pw
