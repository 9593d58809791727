// Optimizers, learning-rate schedules, gradient clipping and weight EMA.
// All update parameters in place, outside autograd, with PyTorch's exact
// formulas (so results can be compared step for step). The updates are the
// optimizer family's ops (kernels/optim/optim.h: one multi-tensor kernel per
// device); this file keeps the state (moments, step counts, buffers) and
// checkpoints it. The state is created on the parameters' device: build the
// optimizer (and the Ema) after Module::to.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace pw {

struct Optimizer {
  virtual ~Optimizer() = default;
  // Applies one update from the parameters' .grad at learning rate lr.
  // Parameters without a gradient are skipped (PyTorch does the same).
  virtual void step(double lr) = 0;
  void zero_grad();
  // Moments and counters by name, for checkpoints ("exp_avg.blocks.0.attn.qkv.weight", ...).
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
  virtual void load_state(const std::vector<std::pair<std::string, Tensor>>& s) = 0;
  std::vector<Param> params;
  int64_t steps = 0;
};

// torch.optim.AdamW; weight decay is skipped for params with decay == false.
struct AdamW : Optimizer {
  double beta1, beta2, eps, weight_decay;
  std::vector<Tensor> exp_avg, exp_avg_sq;
  // Per-parameter step counts for bias correction: a parameter's count moves
  // only on steps where it had a gradient (PyTorch's state['step']).
  std::vector<int64_t> param_steps;
  AdamW(std::vector<Param> ps, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double wd = 0.05);
  void step(double lr) override;
  std::vector<std::pair<std::string, Tensor>> state() const override;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& s) override;
};

// torch.optim.SGD with momentum / Nesterov and L2 weight decay.
struct SGD : Optimizer {
  double momentum, weight_decay;
  bool nesterov;
  std::vector<Tensor> momentum_buffer;  // undefined until the first step
  SGD(std::vector<Param> ps, double momentum = 0.9, double wd = 0.0, bool nesterov = false);
  void step(double lr) override;
  std::vector<std::pair<std::string, Tensor>> state() const override;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& s) override;
};

// What a config's train.optimizer, train.weight_decay, train.betas,
// train.momentum and train.nesterov say (trainers/trainer.h: TrainSpec).
struct OptimSpec {
  std::string kind = "adamw";  // adamw | sgd
  double weight_decay = 0.05;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adamw
  double momentum = 0.9;                          // sgd
  bool nesterov = false;                          // sgd
};
// The optimizer a spec describes, over `params` (after Module::to).
std::unique_ptr<Optimizer> make_optimizer(const OptimSpec& spec, std::vector<Param> params);

// Learning rate at optimizer step `step` (0-based) of `total` steps.
struct LrSchedule {
  std::string kind = "cosine";  // cosine | step | constant
  double base_lr = 1e-3, min_lr = 0;  // cosine reaches min_lr at step total_steps
  int64_t warmup_steps = 0, total_steps = 1;
  int64_t step_size = 1;  // for "step": in optimizer steps
  double gamma = 0.1;
  double at(int64_t step) const;
};

// torch.nn.utils.clip_grad_norm_: scales all gradients so their global L2 norm
// is at most max_norm. Returns the norm before clipping.
double clip_grad_norm(const std::vector<Param>& params, double max_norm);
// Global L2 norm of the gradients (double accumulation, fixed order).
double grad_norm(const std::vector<Param>& params);
// The same two without a host sync: the norm as an f64 (1) tensor on the
// parameters' device (on CUDA: a deterministic two-stage reduction, no atomics).
// Read it with item() only when needed (e.g. at log steps).
Tensor grad_norm_tensor(const std::vector<Param>& params);
Tensor clip_grad_norm_tensor(const std::vector<Param>& params, double max_norm);

// Exponential moving average of parameters and buffers: ema = d*ema + (1-d)*p.
struct Ema {
  double decay;
  std::vector<std::pair<std::string, Tensor>> shadow;
  Ema(const Module& m, double decay);
  void update(const Module& m);
};

}  // namespace pw
