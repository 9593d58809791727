// Normalisations. weight and bias may be undefined Tensors (no affine part);
// gradients flow to x, weight and bias.
#pragma once
#include "autograd/tensor.h"

namespace pw {

// Over the last dim.  x: (...,C), weight, bias: (C) or undefined -> y: x's shape.
// Saves per-row mean and rstd (x.shape[:-1]) for backward.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// Per channel.  x: (B,C) | (B,C,L) | (B,C,H,W); weight, bias, running_mean, running_var: (C) or undefined.
// training: normalises with the batch mean and biased variance over (B, L or H*W) and, where the
// running stats are defined, updates them IN PLACE (momentum, unbiased variance; torch semantics).
// eval: normalises with running_mean/running_var (required), which are then constants.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace pw
