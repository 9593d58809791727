// Classification losses, fused with their log-softmax (stable: logsumexp with
// the row max subtracted). Both return the mean over the batch as a 0-d tensor.
#pragma once
#include "autograd/tensor.h"

namespace pw {

// logits: (B,C) f32/f64, target: (B) I64 class ids in [0, C) -> ().
// label_smoothing eps in [0, 1] mixes eps/C into every class (torch semantics).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0);
// logits: (B,C), target_probs: (B,C) same dtype -> mean_b -sum_c p log_softmax(logits)  (mixup/cutmix).
// Differentiable in both arguments.
Tensor cross_entropy_soft(const Tensor& logits, const Tensor& target_probs);

}  // namespace pw
