// Training, resuming and evaluating a model described by a Config.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "nn/module.h"
#include "trainers/config.h"
#include "trainers/optim.h"

namespace pw {

// The train.* keys of a config, read once (TrainSpec::from) and used by train()
// and `bench train` alike.
struct TrainSpec {
  int64_t epochs = 10, batch_size = 128;
  int64_t seed = 0;
  int threads = 0;  // 0: all cores
  OptimSpec optim;
  // Learning rate: warmup, then `schedule`; in epochs here, in steps in schedule_for().
  std::string schedule = "cosine";
  double lr = 1e-3, min_lr = 0, warmup_epochs = 0, gamma = 0.1;
  int64_t step_size_epochs = 30;
  double label_smoothing = 0.1;
  double clip_grad = 0;  // global gradient-norm limit; 0 = off
  double ema_decay = 0;  // 0 = no EMA
  // Cadence: steps between log lines; epochs between evaluations and checkpoints
  // (0 = only at the end); steps between extra checkpoints (0 = off).
  int64_t log_every = 50, eval_every = 1, checkpoint_every = 1, checkpoint_steps = 0;
  int keep_checkpoints = 2;

  static TrainSpec from(const Config& cfg);
  LrSchedule schedule_for(int64_t steps_per_epoch) const;
};

// The eval.* keys.
struct EvalSpec {
  int64_t batch_size = 256;
  bool hflip_tta = false;
  static EvalSpec from(const Config& cfg);
};

// What one training step leaves on the model's device (read with item() only
// when needed: on CUDA that syncs).
struct StepOut {
  Tensor loss;       // (1) the batch's loss, detached
  Tensor grad_norm;  // f64 (1) before clipping; undefined when train.clip_grad is 0
};

// One optimizer step, the same in train() and `bench train`: forward, loss
// (cross entropy with label smoothing, or against the batch's soft targets, or CTC when
// the batch has token targets: Batch::targets),
// zero_grad, backward, gradient clipping (spec.clip_grad), the update at `lr`,
// the EMA (when `ema`). `on_loss` sees the detached loss before the backward
// (train() checks it there). Each phase is an OpProfile::Scope.
// `after_backward` runs between the backward and the clipping/update (data-parallel
// training averages the gradients there: trainers/data_parallel.h).
StepOut train_step(Module& model, Optimizer& optim, Ema* ema, const Batch& batch, const TrainSpec& spec, double lr,
                   const std::function<void(const Tensor& loss)>& on_loss = nullptr,
                   const std::function<void()>& after_backward = nullptr);

struct TrainOptions {
  std::string out_dir;     // new run folder ("" = runs/<config name>-<time>)
  std::string resume_dir;  // continue this run folder from its latest checkpoint
  // Stop (with a checkpoint) after this many optimizer steps in total; -1 = run
  // to the end. Simulates an interruption in tests; the schedule is unchanged.
  int64_t max_steps = -1;
  bool quiet = false;      // no progress output (tests)
};

struct TrainResult {
  std::string run_dir;
  std::vector<double> losses;  // per optimizer step of this invocation
  int64_t steps = 0;           // total optimizer steps done
  double test_top1 = -1;       // final evaluation, -1 when it did not run
};

TrainResult train(const Config& cfg, const TrainOptions& opt);

// The model a config describes, freshly initialised from train.seed.
std::shared_ptr<Module> build_model(const Config& cfg);
// The training or evaluation data set a config names.
std::shared_ptr<Dataset> open_split(const Config& cfg, bool train);

struct EvalResult {
  int64_t n = 0, num_classes = 0;
  double loss = 0, top1 = 0, top5 = 0;
  std::vector<double> per_class;       // (num_classes) recall
  std::vector<int64_t> confusion;      // (num_classes, num_classes) row = true, col = predicted
  // With eval.hflip_tta the numbers above are of the averaged logits; these are of the
  // plain (single view) logits of the same pass.
  bool hflip_tta = false;
  double single_view_loss = 0, single_view_top1 = 0;
  // Token targets (CTC): word error rate of the greedy decoding; top1/top5 are then the
  // utterances decoded exactly, loss the mean per-token CTC loss. -1: not a sequence task.
  double wer = -1;
  std::string to_json() const;
  std::string to_text(const std::vector<std::string>& class_names) const;
};

// Accumulates an evaluation batch by batch.   logits: (B,K)  labels: (B)
struct EvalAccumulator {
  explicit EvalAccumulator(int64_t num_classes);
  void add(const Tensor& logits, const Tensor& labels);
  EvalResult result() const;
  // Data-parallel evaluation: `sum` adds a vector element-wise over the ranks; the
  // counts, loss sums and confusion matrix become the totals of every rank's shard
  // (exact: sums of counts, not averages of averages).
  void reduce(const std::function<void(std::vector<double>&)>& sum);
 private:
  EvalResult r_;
  double loss_sum_ = 0;
  int64_t top1_ = 0, top5_ = 0;
};

// Logits of a batch of images (B,C,H,W) for evaluation. With `hflip_tta` they are the
// mean of the logits of each image and of its mirror image (left-right), so an image and
// its mirror get bit-identical logits; `single_view`, if given, receives the plain logits.
// `lengths` (Batch::lengths) goes to Module::forward_padded for padded audio batches.
Tensor eval_logits(Module& model, const Tensor& images, bool hflip_tta, Tensor* single_view = nullptr,
                   const Tensor& lengths = Tensor());

// Top-1/top-5/loss/per-class/confusion of `model` in eval mode on `ds` (eval.batch_size,
// eval.hflip_tta).
EvalResult evaluate(Module& model, const Config& cfg, const Dataset& ds);

struct Ema;
// The same for the EMA weights `ema` holds; the model's own weights are restored after.
EvalResult evaluate_ema(Module& model, const Ema& ema, const Config& cfg, const Dataset& ds);

}  // namespace pw
