// Per-element optimizer math shared by the CPU loops (optim_cpu.cpp) and
// the CUDA multi-tensor kernels (optim_cuda.cu), with PyTorch's exact formulas
// and operation order, so the two backends agree to float rounding.
#pragma once
#include <cmath>

#include "runtime/hd.h"

namespace pw::math {

// One element of torch.optim.AdamW. Decoupled weight decay (decay = 1 - lr*wd)
// is applied before the Adam step, as PyTorch does.
//   step_size = lr / (1 - beta1^t),  bc2_sqrt = sqrt(1 - beta2^t)
template <class T>
PW_HD inline void adamw_update(T& p, T& m, T& v, T g, T b1, T b2, T decay, T step_size, T bc2_sqrt, T eps) {
  p *= decay;
  m = b1 * m + (1 - b1) * g;
  v = b2 * v + (1 - b2) * g * g;
  p -= step_size * m / (std::sqrt(v) / bc2_sqrt + eps);
}

// One element of torch.optim.SGD (dampening 0). buf is null without momentum;
// on a parameter's first step the buffer is a copy of the gradient (PyTorch).
template <class T>
PW_HD inline void sgd_update(T& p, T* buf, T g, T lr, T mu, T wd, bool nesterov, bool first) {
  T d = g + wd * p;
  if (buf) {
    *buf = first ? d : mu * *buf + d;
    d = nesterov ? d + mu * *buf : *buf;
  }
  p -= lr * d;
}

// ema = d*ema + (1-d)*p.
template <class T>
PW_HD inline T ema_update(T e, T p, T d) {
  return d * e + (1 - d) * p;
}

}  // namespace pw::math
