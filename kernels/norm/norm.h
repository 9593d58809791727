// Normalisations. weight and bias may be undefined Tensors (no affine part);
// gradients flow to x, weight and bias.
#pragma once
#include <vector>

#include "autograd/tensor.h"

namespace pw {

// Synchronised BatchNorm (SyncBN, as torch.nn.SyncBatchNorm): a training-mode batch_norm
// given one computes its batch statistics over the union of the batches of a group of
// processes (the data-parallel ranks) instead of its own batch. The kernels call it
// between their local reduction and the normalisation; the group's side (dist/sync_bn.h)
// implements it, so the kernels do not depend on dist/. Both calls are collectives:
// every process of the group calls them in the same order.
struct BatchNormSync {
  virtual ~BatchNormSync() = default;
  // moments: (3C) = per channel (count, mean, M2 = sum of squared deviations from the
  // mean) of this process's batch; replaced in place by those of every process's batch
  // together (combine_moments below, in rank order).
  virtual void combine_moments(std::vector<double>& moments) = 0;
  // sums: per-channel sums of this process (backward: sum dy, sum dy * xhat); replaced
  // in place by their sum over the processes.
  virtual void sum(std::vector<double>& sums) = 0;
};
// Exact combination of per-channel (count, mean, M2) triples, `parts` in order
// (Chan et al.'s pairwise update, left to right): the result depends only on the order.
// Each part: (3C); the result: (3C).
std::vector<double> combine_moments(const std::vector<std::vector<double>>& parts);

// Over the last dim.  x: (...,C), weight, bias: (C) or undefined -> y: x's shape.
// Saves per-row mean and rstd (x.shape[:-1]) for backward.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// Per channel.  x: (B,C) | (B,C,L) | (B,C,H,W); weight, bias, running_mean, running_var: (C) or undefined.
// training: normalises with the batch mean and biased variance over (B, L or H*W) and, where the
// running stats are defined, updates them IN PLACE (momentum, unbiased variance; torch semantics).
// eval: normalises with running_mean/running_var (required), which are then constants.
// sync (training only; null = local statistics): the batch statistics, the running-statistics
// update (unbiased with the global count) and backward's two per-channel sums are those of
// every process's batch together (BatchNormSync above). dweight, dbias stay this process's
// own (the gradient reducer averages them), as in torch.nn.SyncBatchNorm.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  BatchNormSync* sync = nullptr);

}  // namespace pw
