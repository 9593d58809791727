#include "data/specaugment.h"

#include <algorithm>
#include <cmath>

namespace pw {

void spec_augment(float* x, int64_t M, int64_t T, const SpecAugmentConfig& c, SampleRng& rng) {
  if (M <= 0 || T <= 0) return;
  for (int64_t k = 0; k < c.freq_masks; ++k) {
    const int64_t f = rng.randint(0, std::min(c.freq_width, M));  // f ~ U{0..F}, at most every bin
    const int64_t f0 = rng.randint(0, M - f);                      // f0 ~ U{0..M-f}
    for (int64_t m = f0; m < f0 + f; ++m) std::fill(x + m * T, x + m * T + T, 0.f);
  }
  const int64_t tmax = std::min(c.time_width, (int64_t)std::floor(c.time_ratio * (double)T));
  for (int64_t k = 0; k < c.time_masks; ++k) {
    const int64_t t = rng.randint(0, std::max<int64_t>(tmax, 0));
    const int64_t t0 = rng.randint(0, T - t);
    for (int64_t m = 0; m < M; ++m) std::fill(x + m * T + t0, x + m * T + t0 + t, 0.f);
  }
}

}  // namespace pw
