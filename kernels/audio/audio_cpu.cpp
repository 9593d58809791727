// CPU kernel of the audio family (audio_kernels.h): the fused log-mel front end.
// One work item per frame (b, t): gather the centre-padded frame, a direct
// windowed DFT against the precomputed basis (simd dot products), the power
// spectrum, the mel filterbank, the log. Each output is computed by one item in
// a fixed order, so the result does not depend on the thread count.
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/audio/audio_kernels.h"
#include "kernels/audio/audio_math.h"

namespace pw {

namespace {

// y: (B,M,T)  wave: (B,L)  basis: (2,K,N)  fbank: (M,K)
template <class T>
void log_mel_loop(T* __restrict y, const T* __restrict wave, const T* __restrict basis, const T* __restrict fbank,
                  int64_t B, int64_t L, int64_t N, int64_t K, int64_t M, int64_t TT, int64_t hop, bool center,
                  T eps) {
  const int64_t pad = center ? N / 2 : 0;
  // NOTE: one utterance (about 100 frames a second) runs serially: the data loader calls this
  // per sample from its worker threads, where a nested OpenMP team only oversubscribes the cores.
#pragma omp parallel if (B * TT >= 512 && B * TT * N * K > 4 * kParallelGrain)
  {
    std::vector<T> frame((size_t)N), power((size_t)K);
#pragma omp for
    for (int64_t it = 0; it < B * TT; ++it) {
      const int64_t b = it / TT, t = it % TT;
      const T* w = wave + b * L;
      for (int64_t n = 0; n < N; ++n) frame[(size_t)n] = w[math::reflect_index(t * hop + n - pad, L)];
      const T* f = frame.data();
      for (int64_t k = 0; k < K; ++k) {
        const T* c = basis + k * N;
        const T* s = basis + (K + k) * N;
        T re = 0, im = 0;
#pragma omp simd reduction(+ : re, im)
        for (int64_t n = 0; n < N; ++n) {
          re += c[n] * f[n];
          im += s[n] * f[n];
        }
        power[(size_t)k] = re * re + im * im;
      }
      const T* p = power.data();
      for (int64_t m = 0; m < M; ++m) {
        const T* fb = fbank + m * K;
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < K; ++k) acc += fb[k] * p[k];
        y[(b * M + m) * TT + t] = math::log_eps(acc, eps);
      }
    }
  }
}

}  // namespace

void log_mel_forward_cpu(Tensor& y, const Tensor& wave, const Tensor& basis, const Tensor& fbank, int64_t hop,
                         bool center, double eps) {
  const int64_t B = wave.size(0), L = wave.size(1), N = basis.size(2), K = basis.size(1), M = fbank.size(0),
                TT = y.size(2);
  dispatch_float(wave.dtype(), "log_mel", [&](auto tag) {
    using T = decltype(tag);
    log_mel_loop<T>(y.data<T>(), wave.data<T>(), basis.data<T>(), fbank.data<T>(), B, L, N, K, M, TT, hop, center,
                    (T)eps);
  });
}

}  // namespace pw
