// Per-row math of linear attention (Katharopoulos et al. 2020), shared by the CPU
// loops, the CUDA kernels and the float64 gradient checks (T = float or double):
// the feature maps phi and their vector-Jacobian products.
//
//   taylor: phi(x) = [1, x / |x|]     (F = HD + 1): phi(q).phi(k) = 1 + q^.k^, the first-order
//                                      Taylor form of exp(q^.k^) on L2-normalised q, k
//   elu:    phi(x) = elu(x) + 1       (F = HD):     positive, so every normaliser is > 0
//           (exp is vexp: the vectorisable one in float32, libm's in float64)
//
// A key's features are scaled by its mask weight m (1 real token, 0 padding), so a
// padded key adds nothing to the state sum phi(K)^T [V, 1].
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/softmax/softmax_math.h"  // vexp
#include "runtime/hd.h"

// `#pragma omp simd` on the CPU loops (nvcc compiles the same lines without it).
#if defined(__CUDACC__)
#define PW_LIN_SIMD
#else
#define PW_LIN_SIMD _Pragma("omp simd")
#endif

namespace pw::math {

enum LinFeatureMap : int { kLinTaylor = 0, kLinElu = 1 };

// Added to every row's normaliser sum_j phi(q_i).phi(k_j): a row whose keys are all
// padded (or, for taylor, all opposite to q) gives 0, not 0/0.
constexpr double kLinAttnEps = 1e-6;
// |x| floor of the taylor map, as torch.nn.functional.normalize (eps 1e-12).
constexpr double kLinNormEps = 1e-12;

// min(x, 0). The float one is bitwise (softmax_math.h's blend): GCC turns a float `?:`
// into a branch and then does not vectorise the loop.
template <class T> PW_HD inline T lin_min0(T x) { return x < T(0) ? x : T(0); }
PW_HD inline float lin_min0(float x) { return detail::blend(detail::mask(x < 0.f), x, 0.f); }

// Features per row: HD + 1 (taylor) or HD (elu).
PW_HD inline int64_t lin_features(int fm, int64_t HD) { return fm == kLinTaylor ? HD + 1 : HD; }

// phi (F) = m * phi(x), x: (HD) contiguous.
template <class T>
PW_HD inline void lin_phi_fwd(T* phi, const T* x, int64_t HD, int fm, T m) {
  if (fm == kLinTaylor) {
    T ss = 0;
    for (int64_t c = 0; c < HD; ++c) ss += x[c] * x[c];
    const T r = std::sqrt(ss), floor = T(kLinNormEps);
    const T inv = m / (r > floor ? r : floor);
    phi[0] = m;
    for (int64_t c = 0; c < HD; ++c) phi[c + 1] = x[c] * inv;
  } else {
    PW_LIN_SIMD
    for (int64_t c = 0; c < HD; ++c) {  // max(x, 0) + exp(min(x, 0)): branch-free, the CPU loop vectorises
      const T mn = lin_min0(x[c]);
      phi[c] = m * ((x[c] - mn) + vexp(mn));
    }
  }
}

// Forward was phi = m * phi(x). dx (HD) (=, or += when acc) the gradient from dphi (F):
//   taylor: dx = m (dphi[1:] - x^ (x^.dphi[1:])) / |x|   (|x| above the floor; below: m dphi[1:] / floor)
//   elu:    dx = m dphi * (x > 0 ? 1 : exp(x)) = m dphi * exp(min(x, 0))
template <class T>
PW_HD inline void lin_phi_bwd(T* dx, const T* x, const T* dphi, int64_t HD, int fm, T m, bool acc) {
  if (fm == kLinTaylor) {
    T ss = 0;
    for (int64_t c = 0; c < HD; ++c) ss += x[c] * x[c];
    const T r = std::sqrt(ss), floor = T(kLinNormEps);
    const bool above = r > floor;
    const T inv = T(1) / (above ? r : floor);
    T dot = 0;
    if (above)
      for (int64_t c = 0; c < HD; ++c) dot += x[c] * dphi[c + 1];
    dot *= inv;  // x^.dphi[1:]
    for (int64_t c = 0; c < HD; ++c) {
      const T g = m * inv * (dphi[c + 1] - x[c] * inv * dot);
      dx[c] = acc ? dx[c] + g : g;
    }
  } else {
    PW_LIN_SIMD
    for (int64_t c = 0; c < HD; ++c) {
      const T g = m * dphi[c] * vexp(lin_min0(x[c]));  // 1 for x > 0, exp(x) else
      dx[c] = acc ? dx[c] + g : g;
    }
  }
}

// The normalised output of one row from its raw sums nd (E = HD + 1): nd[:HD] =
// phi(q).S[:, :HD] (the numerator), nd[HD] = phi(q).z. y = nd[:HD] / (nd[HD] + eps).
template <class T>
PW_HD inline T lin_den(const T* nd, int64_t HD) { return nd[HD] + T(kLinAttnEps); }

}  // namespace pw::math
