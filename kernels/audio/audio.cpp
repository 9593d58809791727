// The log-mel op and its dispatch row (forward-only), the constant tables, and
// per-utterance normalisation. Device-agnostic; kernels in audio_cpu.cpp and audio_cuda.cu.
#include "kernels/audio/audio.h"

#include <cmath>
#include <vector>

#include "autograd/op_table.h"
#include "kernels/audio/audio_kernels.h"
#include "kernels/audio/audio_math.h"

namespace pw {

namespace {
using LogMelFn = void(Tensor& y, const Tensor& wave, const Tensor& basis, const Tensor& fbank, int64_t hop,
                      bool center, double eps);
PW_OP_ROW_NOGRAD(kLogMel, "log_mel", "audio", LogMelFn, log_mel_forward_cpu, PW_CUDA_KERNEL(log_mel_forward_cuda));

void check_config(const LogMelConfig& c) {
  PW_CHECK(c.sample_rate > 0 && c.n_fft >= 2 && c.hop > 0 && c.n_mels > 0, "log_mel: sample_rate ", c.sample_rate,
           ", n_fft ", c.n_fft, ", hop ", c.hop, ", n_mels ", c.n_mels, " must be positive (n_fft >= 2)");
  const double f_max = c.f_max > 0 ? c.f_max : c.sample_rate / 2.0;
  PW_CHECK(c.f_min >= 0 && c.f_min < f_max && f_max <= c.sample_rate / 2.0, "log_mel: f_min ", c.f_min, " and f_max ",
           f_max, " must satisfy 0 <= f_min < f_max <= sample_rate/2 = ", c.sample_rate / 2.0);
  PW_CHECK(c.eps > 0, "log_mel: eps must be > 0 (log of silence), got ", c.eps);
}
}  // namespace

std::vector<double> mel_filterbank_htk(int64_t n_freqs, double f_min, double f_max, int64_t n_mels,
                                       int64_t sample_rate) {
  // torchaudio.functional.melscale_fbanks, step by step (all_freqs spans 0..sample_rate // 2).
  auto linspace = [](double a, double b, int64_t n, int64_t i) { return n == 1 ? a : a + (b - a) * (double)i / (double)(n - 1); };
  const double m_min = math::hz_to_mel_htk(f_min), m_max = math::hz_to_mel_htk(f_max);
  std::vector<double> f_pts((size_t)n_mels + 2);
  for (int64_t i = 0; i < n_mels + 2; ++i) f_pts[(size_t)i] = math::mel_to_hz_htk(linspace(m_min, m_max, n_mels + 2, i));
  std::vector<double> fb((size_t)(n_freqs * n_mels));
  for (int64_t k = 0; k < n_freqs; ++k) {
    const double f = linspace(0.0, (double)(sample_rate / 2), n_freqs, k);
    for (int64_t m = 0; m < n_mels; ++m) {
      const double down = (f - f_pts[(size_t)m]) / (f_pts[(size_t)m + 1] - f_pts[(size_t)m]);
      const double up = (f_pts[(size_t)m + 2] - f) / (f_pts[(size_t)m + 2] - f_pts[(size_t)m + 1]);
      fb[(size_t)(k * n_mels + m)] = std::max(0.0, std::min(down, up));
    }
  }
  return fb;
}

LogMelTables log_mel_tables(const LogMelConfig& c, DType dtype, Device device) {
  check_config(c);
  const int64_t N = c.n_fft, K = N / 2 + 1, M = c.n_mels;
  std::vector<double> basis((size_t)(2 * K * N));
  const double two_pi = 6.283185307179586476925286766559;
  for (int64_t n = 0; n < N; ++n) {
    const double w = 0.5 - 0.5 * std::cos(two_pi * (double)n / (double)N);  // torch.hann_window(N, periodic=True)
    for (int64_t k = 0; k < K; ++k) {
      // (k n) mod N keeps the angle small, so cos/sin stay exact to double rounding.
      const double a = two_pi * (double)((k * n) % N) / (double)N;
      basis[(size_t)(k * N + n)] = w * std::cos(a);
      basis[(size_t)((K + k) * N + n)] = -w * std::sin(a);
    }
  }
  const std::vector<double> fb = mel_filterbank_htk(K, c.f_min, c.f_max > 0 ? c.f_max : c.sample_rate / 2.0, M,
                                                    c.sample_rate);
  std::vector<double> fbt((size_t)(M * K));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t m = 0; m < M; ++m) fbt[(size_t)(m * K + k)] = fb[(size_t)(k * M + m)];
  LogMelTables t;
  t.cfg = c;
  t.basis = from_vector(basis, {2, K, N}, dtype).to(device);
  t.fbank = from_vector(fbt, {M, K}, dtype).to(device);
  return t;
}

int64_t log_mel_frames(int64_t L, const LogMelConfig& c) {
  return c.center ? 1 + L / c.hop : (L >= c.n_fft ? 1 + (L - c.n_fft) / c.hop : 0);
}

Tensor log_mel(const Tensor& wave_in, const LogMelTables& t) {
  const LogMelConfig& c = t.cfg;
  PW_CHECK(wave_in.dim() == 1 || wave_in.dim() == 2, "log_mel: wave is ", wave_in.str(),
           ", expected (L) or (B,L) samples");
  PW_CHECK(wave_in.dtype() == DType::F32 || wave_in.dtype() == DType::F64, "log_mel: wave is ", wave_in.str(),
           ", expected f32 or f64");
  PW_CHECK(t.basis.defined() && t.basis.dtype() == wave_in.dtype() && t.basis.device() == wave_in.device(),
           "log_mel: the tables are ", t.basis.str(), " but the wave is ", wave_in.str(),
           "; build them with log_mel_tables(cfg, wave.dtype(), wave.device())");
  const Tensor wave = wave_in.dim() == 1 ? wave_in.reshape({1, wave_in.size(0)}) : wave_in;
  const int64_t B = wave.size(0), L = wave.size(1);
  if (c.center)
    PW_CHECK(L > c.n_fft / 2, "log_mel: a wave of ", L, " samples is too short for n_fft ", c.n_fft,
             " with centre padding (needs more than n_fft/2 = ", c.n_fft / 2, " samples, as torch.stft)");
  else
    PW_CHECK(L >= c.n_fft, "log_mel: a wave of ", L, " samples is shorter than n_fft ", c.n_fft);
  const int64_t T = log_mel_frames(L, c);
  Tensor y = empty({B, c.n_mels, T}, wave.dtype(), wave.device());
  if (B * T > 0) kLogMel.fwd(wave.device())(y, wave, t.basis, t.fbank, c.hop, c.center, c.eps);
  return wave_in.dim() == 1 ? y.reshape({c.n_mels, T}) : y;
}

Tensor log_mel(const Tensor& wave, const LogMelConfig& cfg) {
  return log_mel(wave, log_mel_tables(cfg, wave.dtype(), wave.device()));
}

void normalize_utterance(float* x, int64_t M, int64_t T) {
  if (T <= 0) return;
  for (int64_t m = 0; m < M; ++m) {
    float* r = x + m * T;
    double s = 0, ss = 0;
    for (int64_t t = 0; t < T; ++t) s += r[t];
    const double mean = s / (double)T;
    for (int64_t t = 0; t < T; ++t) ss += ((double)r[t] - mean) * ((double)r[t] - mean);
    const double inv = 1.0 / std::sqrt(ss / (double)T + 1e-5);
    for (int64_t t = 0; t < T; ++t) r[t] = (float)(((double)r[t] - mean) * inv);
  }
}

}  // namespace pw
