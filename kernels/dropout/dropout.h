// Dropout with masks from pw's counter-based Philox: element i's draw is a pure
// function of (seed, counter + i/4) (word i%4 of Philox4x32), so masks never depend
// on the thread count, and backward re-derives the mask instead of storing it.
// dropout advances the generator by ceil(numel/4) counters, drop_path by B.
// Both ops return x itself when !training or p == 0. g = nullptr uses default_generator().
#pragma once
#include "autograd/tensor.h"

namespace pw {

// x: any shape -> y: same shape; each element kept with prob 1-p, scaled by 1/(1-p).
Tensor dropout(const Tensor& x, double p, bool training, Generator* g = nullptr);
// Stochastic depth.  x: (B,...) -> y: same shape; each sample b kept whole with prob 1-p,
// scaled by 1/(1-p) (timm's drop_path with scale_by_keep).
Tensor drop_path(const Tensor& x, double p, bool training, Generator* g = nullptr);

}  // namespace pw
