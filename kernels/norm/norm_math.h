// Per-element math of the normalisations (layer_norm, batch_norm), forward and
// dL/dx, for the CPU loops and the CUDA kernels alike (T = float or double).
// The statistics (mean, rstd, and the two sums of backward) are reductions
// and stay per backend.
#pragma once
#include <cmath>

#include "runtime/hd.h"

namespace pw::math {

// rstd = 1 / sqrt(var + eps), var the biased variance of the normalised set.
template <class T> PW_HD inline T norm_rstd(T var, T eps) { return T(1) / std::sqrt(var + eps); }

// y = xhat * w + b, xhat = (x - mean) * rstd.
template <class T> PW_HD inline T norm_fwd(T x, T mean, T rstd, T w, T b) { return (x - mean) * rstd * w + b; }

// With batch statistics (mean and rstd depend on x), over a set of n elements:
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * w.
// `m_dxhat` = mean(dxhat), `m_dxhat_xhat` = mean(dxhat * xhat) over the set.
template <class T> PW_HD inline T norm_bwd(T dxhat, T xhat, T rstd, T m_dxhat, T m_dxhat_xhat) {
  return rstd * (dxhat - m_dxhat - xhat * m_dxhat_xhat);
}

// Running statistics, torch semantics: new = (1 - momentum) old + momentum batch,
// the batch variance unbiased (times n / (n - 1)) although normalisation used the biased one.
template <class T> PW_HD inline T running_update(T old, T batch, T momentum) {
  return (T(1) - momentum) * old + momentum * batch;
}

}  // namespace pw::math
