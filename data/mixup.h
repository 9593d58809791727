// Mixup / CutMix on a collated batch, with label smoothing folded into the
// soft targets (timm's Mixup, mode "batch": one lambda per batch, sample i is
// mixed with sample B-1-i).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"
#include "data/rng.h"

namespace pw {

struct MixupConfig {
  double mixup_alpha = 0.0;      // Beta(a,a) for mixup; 0 = off
  double cutmix_alpha = 0.0;     // Beta(a,a) for cutmix; 0 = off
  double prob = 1.0;             // probability a batch is mixed at all
  double switch_prob = 0.5;      // with both on: probability of cutmix instead of mixup
  double label_smoothing = 0.1;  // folded into the soft targets
  bool correct_lam = true;       // lambda = 1 - (clipped box area) / (H*W) for cutmix
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

// What one call did, for logging and tests.
struct MixupParams {
  double lam = 1.0;  // weight of the original sample
  bool cutmix = false;
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // cutmix box [y0,y1) x [x0,x1)
};

// images: (B,C,H,W) F32, mixed in place.  labels: (B) I64 in [0,K).
// Returns soft targets (B,K) F32: lam * smooth(onehot(y)) + (1-lam) * smooth(onehot(flip(y))),
// smooth(v) = v * (1 - s) + s/K. Draws come from `rng` (the batch's own stream).
Tensor mixup_batch(Tensor& images, const Tensor& labels, int64_t num_classes, const MixupConfig& cfg, SampleRng& rng,
                   MixupParams* params = nullptr);

// (B,K) F32 targets of timm's mixup_target: off = s/K, on = 1 - s + s/K.
Tensor smooth_one_hot(const Tensor& labels, int64_t num_classes, double smoothing);

}  // namespace pw
