// The audio front end: log-mel spectrogram features of waveforms, as
// torchaudio.transforms.MelSpectrogram (periodic Hann window of n_fft samples,
// win_length = n_fft, power 2, center=True with reflect padding, onesided,
// HTK mel scale, filterbank norm None) followed by log(x + eps).
// Kernels: audio_cpu.cpp, audio_cuda.cu (forward only, see audio_kernels.h).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

struct LogMelConfig {
  int64_t sample_rate = 16000;
  int64_t n_fft = 400;    // 25 ms at 16 kHz; the window is n_fft long (torchaudio win_length default)
  int64_t hop = 160;      // 10 ms at 16 kHz (torchaudio's default is n_fft / 2)
  int64_t n_mels = 80;    // torchaudio's default is 128; 80 is the Conformer paper's
  double f_min = 0.0;
  double f_max = 0.0;     // 0 = sample_rate / 2 (torchaudio f_max=None)
  bool center = true;     // pad n_fft/2 on both sides by reflection
  double eps = 1e-6;      // log(power + eps)
};

// The constant tables of one configuration, in one dtype on one device.
struct LogMelTables {
  LogMelConfig cfg;
  Tensor basis;  // (2, K, N): hann[n] * cos(2 pi k n / N), -hann[n] * sin(2 pi k n / N); K = N/2 + 1
  Tensor fbank;  // (M, K): triangular HTK mel filters (torchaudio melscale_fbanks, transposed)
};
LogMelTables log_mel_tables(const LogMelConfig& cfg, DType dtype = DType::F32, Device device = Device::CPU);

// torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None,
// mel_scale="htk"): (n_freqs, n_mels) in float64, row-major.
std::vector<double> mel_filterbank_htk(int64_t n_freqs, double f_min, double f_max, int64_t n_mels,
                                       int64_t sample_rate);

// Frames of a wave of L samples: 1 + L / hop with center, else 1 + (L - n_fft) / hop.
int64_t log_mel_frames(int64_t L, const LogMelConfig& cfg);

// Log-mel features.  wave: (B,L) or (L) F32/F64  ->  (B, n_mels, T) or (n_mels, T), T = log_mel_frames(L).
// Not differentiable (forward-only dispatch row "log_mel").
Tensor log_mel(const Tensor& wave, const LogMelTables& tables);
Tensor log_mel(const Tensor& wave, const LogMelConfig& cfg);

// Per-utterance normalisation in place: each mel bin (row) of x (M,T) F32 gets
// zero mean and unit variance over its first T frames (x - mean) / sqrt(var + 1e-5).
void normalize_utterance(float* x, int64_t M, int64_t T);

}  // namespace pw
