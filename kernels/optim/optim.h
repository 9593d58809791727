// The optimizer family's ops: in-place updates of many tensors at once, outside
// autograd (nothing here records a graph), on whichever device the tensors live
// (one device per call). The kernels and their shapes: optim_kernels.h.
// trainers/optim.h builds AdamW, SGD, clipping and the EMA on these.
#pragma once
#include <vector>

#include "kernels/optim/optim_kernels.h"

namespace pw {

// torch.optim.AdamW on every slot (a slot: a parameter, its gradient and moments).
void adamw_step(const std::vector<AdamWSlot>& ts, const AdamWArgs& a);
// torch.optim.SGD on every slot.
void sgd_step(const std::vector<SgdSlot>& ts, const SgdArgs& a);
// sqrt(sum over all xs of x^2), accumulated in double in a fixed order: a f64
// (1) tensor on `device` (read it with item() only when needed). xs live on
// `device`; none at all gives 0.
Tensor global_norm(const std::vector<Tensor>& xs, Device device);
// Scales every x by max_norm / (norm + 1e-6) when that is < 1.   norm: f64 (1), from global_norm
void clip_to_norm(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm);
// ema[k] = decay*ema[k] + (1-decay)*xs[k] for every k.
void ema_update(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay);

}  // namespace pw
