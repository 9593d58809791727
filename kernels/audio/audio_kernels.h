// The kernels of the audio family: the fused log-mel front end. One declaration
// per device; the dispatch row is in audio.cpp. Forward only: features are
// inputs of the model, nothing upstream of them needs a gradient.
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// y[b,m,t] = log(eps + sum_k fbank[m,k] * |sum_n basis[.,k,n] * frame_t[n]|^2), frame_t the n_fft
// samples starting at t*hop of the wave, centre-padded by n_fft/2 with reflection when `center`.
// y: (B,M,T)  wave: (B,L)  basis: (2,K,N) = window * (cos, -sin)(2 pi k n / N)  fbank: (M,K)
// All of one float dtype, contiguous, on one device.
void log_mel_forward_cpu(Tensor& y, const Tensor& wave, const Tensor& basis, const Tensor& fbank, int64_t hop,
                         bool center, double eps);
void log_mel_forward_cuda(Tensor& y, const Tensor& wave, const Tensor& basis, const Tensor& fbank, int64_t hop,
                          bool center, double eps);

}  // namespace pw
