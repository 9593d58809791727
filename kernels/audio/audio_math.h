// Per-element math of the audio front end (log-mel), shared by the CPU loop,
// the CUDA kernel and the host code that builds the tables (T = float or double).
#pragma once
#include <cmath>
#include <cstdint>

#include "runtime/hd.h"

namespace pw::math {

// HTK mel scale (torchaudio's mel_scale="htk", MelSpectrogram's default).
template <class T> PW_HD inline T hz_to_mel_htk(T f) { return T(2595) * std::log10(T(1) + f / T(700)); }
template <class T> PW_HD inline T mel_to_hz_htk(T m) { return T(700) * (std::pow(T(10), m / T(2595)) - T(1)); }

// Sample of the centre-padded signal at i in [-(L-1), 2L-2]: numpy/torch "reflect"
// padding (the edge sample is not repeated). Needs L >= 2.
PW_HD inline int64_t reflect_index(int64_t i, int64_t L) {
  if (i < 0) i = -i;
  if (i >= L) i = 2 * (L - 1) - i;
  return i;
}

// log(mel power + eps): eps keeps silence (power 0) finite.
template <class T> PW_HD inline T log_eps(T p, T eps) { return std::log(p + eps); }

}  // namespace pw::math
