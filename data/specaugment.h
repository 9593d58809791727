// SpecAugment (Park et al. 2019, arXiv 1904.08779): frequency and time masks on
// one utterance's features. Time warping is left out (the paper found it the
// least useful and the most expensive). All randomness comes from the SampleRng
// passed in, so the masks are a pure function of (seed, epoch, index).
#pragma once
#include <cstdint>

#include "data/rng.h"

namespace pw {

// Defaults: the paper's SM policy (LibriSpeech, 80 mels): F = 15, mF = 2, T = 70, p = 0.2, mT = 2.
struct SpecAugmentConfig {
  int64_t freq_masks = 2;    // mF
  int64_t freq_width = 15;   // F: each mask covers f ~ U{0..F} bins
  int64_t time_masks = 2;    // mT
  int64_t time_width = 70;   // T: each mask covers t ~ U{0..min(T, p * frames)} frames
  double time_ratio = 0.2;   // p
  bool enabled() const { return (freq_masks > 0 && freq_width > 0) || (time_masks > 0 && time_width > 0); }
};

// x: (M,T) row-major, one utterance's valid frames; masked values become 0
// (the mean after per-utterance normalisation, as the paper sets masks to the mean).
void spec_augment(float* x, int64_t M, int64_t T, const SpecAugmentConfig& c, SampleRng& rng);

}  // namespace pw
