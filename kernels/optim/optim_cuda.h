// CUDA launchers of the optimizers (multi-tensor: ONE launch updates every
// parameter), global-norm gradient clipping (two-stage, no atomics) and the
// weight EMA. CPU reference: trainers/optim.cpp; element math: optim_math.h.
// All run on cuda::stream() and never synchronise. T = float or double.
//
// Each launcher uploads a small table (one entry per tensor, plus the list of
// fixed-size chunks that map blocks to tensors) to the device and frees it in
// stream order, so all pointers may change from call to call (gradients do).
#pragma once
#include <cstdint>
#include <vector>

namespace pw {

// One parameter of an AdamW step. p, g, m, v: (n) on the device.
template <class T>
struct AdamWTensor {
  T* p;          // (n) parameter, updated in place
  const T* g;    // (n) gradient
  T* m;          // (n) exp_avg
  T* v;          // (n) exp_avg_sq
  int64_t n;
  int64_t step;  // this parameter's step count AFTER this step (>= 1): bias correction
  int32_t decay; // 1: apply weight decay, 0: not (norms, biases, tokens)
};
// torch.optim.AdamW over all tensors in one launch; bias corrections are
// computed per tensor from its own step count (in double, as the CPU).
template <class T>
void adamw_step_cuda(const std::vector<AdamWTensor<T>>& ts, double lr, double beta1, double beta2, double eps,
                     double weight_decay);

// One parameter of an SGD step. p, g, buf: (n); buf null without momentum.
template <class T>
struct SgdTensor {
  T* p;
  const T* g;
  T* buf;        // momentum buffer or nullptr
  int64_t n;
  int32_t decay; // 1: apply weight decay
  int32_t first; // 1: the buffer's first step (it becomes a copy of the update)
};
template <class T>
void sgd_step_cuda(const std::vector<SgdTensor<T>>& ts, double lr, double momentum, double weight_decay,
                   bool nesterov);

// norm[0] = sqrt(sum over all tensors of sum g^2), accumulated in double:
// per-chunk block sums (fixed order) into a partials array, then one block
// folds the partials in a fixed order. norm: (1) double on the device.
// grads[k]: (sizes[k]).
template <class T>
void grad_norm_cuda(double* norm, const std::vector<const T*>& grads, const std::vector<int64_t>& sizes);
// g *= coef for every gradient when coef = max_norm / (norm[0] + 1e-6) < 1
// (torch.nn.utils.clip_grad_norm_); norm is read on the device (no sync).
template <class T>
void clip_scale_cuda(const std::vector<T*>& grads, const std::vector<int64_t>& sizes, const double* norm,
                     double max_norm);

// ema[k] = d*ema[k] + (1-d)*p[k] for every tensor, one launch.   ema[k], p[k]: (sizes[k])
template <class T>
void ema_update_cuda(const std::vector<T*>& ema, const std::vector<const T*>& p, const std::vector<int64_t>& sizes,
                     double decay);

}  // namespace pw
