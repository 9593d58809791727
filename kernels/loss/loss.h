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

// Connectionist temporal classification (Graves et al. 2006), forward and backward in log
// space (double precision inside). Batch-first, unlike torch's (T,B,C):
//   log_probs: (B,T,C) f32/f64, normally log_softmax over C (any values are accepted; the
//              gradient is the exact one w.r.t. log_probs)
//   targets: (B,S) I64, sample b's labels in targets[b, :target_lengths[b]], each in [0, C)
//            and != blank (the rest is padding, ignored)
//   input_lengths, target_lengths: (B) I64, 0 <= input_lengths[b] <= T, target_lengths[b] <= S
// -> (B): per sample -log p(targets | log_probs), no reduction (torch's reduction='none').
// A sample whose input_lengths cannot hold its targets has loss inf (0 with zero_infinity,
// as torch) and gets gradient 0 either way. CTC's "mean" reduction is
// mean(loss / target_lengths) (torch's reduction='mean'), composed by the caller.
Tensor ctc_loss(const Tensor& log_probs, const Tensor& targets, const Tensor& input_lengths,
                const Tensor& target_lengths, int64_t blank = 0, bool zero_infinity = false);

}  // namespace pw
