// CUDA kernel of the audio family (audio_kernels.h): the fused log-mel front
// end. One block per frame (b, t), looping over frames when there are more than
// the grid: the block gathers the centre-padded frame into shared memory, its
// threads each take DFT bins (power into shared memory), then mel bins (log).
// Plain shared memory and barriers, portable (runs under PW_CUDA=EMU). CPU
// reference: audio_cpu.cpp; both sum in ascending n and k per thread.
#include <algorithm>

#include "autograd/dispatch.h"
#include "kernels/audio/audio_kernels.h"
#include "kernels/audio/audio_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

constexpr int kThreads = 128;

// y: (B,M,TT)  wave: (B,L)  basis: (2,K,N)  fbank: (M,K); dynamic shared memory: (N + K) T
template <class T>
__global__ void log_mel_fwd_kernel(T* __restrict__ y, const T* __restrict__ wave, const T* __restrict__ basis,
                                   const T* __restrict__ fbank, int64_t B, int64_t L, int64_t N, int64_t K,
                                   int64_t M, int64_t TT, int64_t hop, int64_t pad, T eps) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* frame = reinterpret_cast<T*>(smem);  // (N)
  T* power = frame + N;                   // (K)
  for (int64_t it = blockIdx.x; it < B * TT; it += gridDim.x) {
    const int64_t b = it / TT, t = it % TT;
    const T* w = wave + b * L;
    for (int64_t n = threadIdx.x; n < N; n += blockDim.x) frame[n] = w[math::reflect_index(t * hop + n - pad, L)];
    __syncthreads();
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      const T* c = basis + k * N;
      const T* s = basis + (K + k) * N;
      T re = 0, im = 0;
      for (int64_t n = 0; n < N; ++n) {
        re += c[n] * frame[n];
        im += s[n] * frame[n];
      }
      power[k] = re * re + im * im;
    }
    __syncthreads();
    for (int64_t m = threadIdx.x; m < M; m += blockDim.x) {
      const T* fb = fbank + m * K;
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += fb[k] * power[k];
      y[(b * M + m) * TT + t] = math::log_eps(acc, eps);
    }
    __syncthreads();  // the next frame overwrites frame and power
  }
}

}  // namespace

void log_mel_forward_cuda(Tensor& y, const Tensor& wave, const Tensor& basis, const Tensor& fbank, int64_t hop,
                          bool center, double eps) {
  const int64_t B = wave.size(0), L = wave.size(1), N = basis.size(2), K = basis.size(1), M = fbank.size(0),
                TT = y.size(2);
  dispatch_float(wave.dtype(), "log_mel", [&](auto tag) {
    using T = decltype(tag);
    const size_t smem = (size_t)(N + K) * sizeof(T);
    PW_CHECK(smem <= 48 * 1024, "log_mel: n_fft ", N, " needs ", smem,
             " bytes of shared memory per block, over the 48 KiB the CUDA kernel uses; lower n_fft");
    const unsigned grid = (unsigned)std::min<int64_t>(B * TT, 132 * 16);
    log_mel_fwd_kernel<T><<<grid, kThreads, smem, cuda::stream()>>>(y.data<T>(), wave.data<T>(), basis.data<T>(),
                                                                     fbank.data<T>(), B, L, N, K, M, TT, hop,
                                                                     center ? N / 2 : 0, (T)eps);
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace pw
