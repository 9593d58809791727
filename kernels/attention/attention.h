// Fused multi-head self-attention core, on the packed output of a qkv projection.
// CPU: per-head GEMMs + row softmax (attention_cpu.cpp). CUDA: the flash kernels
// (flash_attention_cuda.h) between head split/merge permutes (attention_cuda.cu).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// qkv: (B,N,3*NH*HD), read as (B,N,3,NH,HD): q, k, v = qkv[:,:,0], [:,:,1], [:,:,2].
// y: (B,N,NH*HD), y[b,:,h,:] = softmax(scale * q[b,:,h] k[b,:,h]^T) v[b,:,h] per head h.
// The same values as the composition permute/chunk/matmul/softmax/matmul/permute, with
// no head-split copies: every GEMM reads q, k, v in place with a row stride of 3*NH*HD.
// CUDA: float32 only, HD in {16, 32, 64, 128}.
Tensor attention_qkv(const Tensor& qkv, int64_t heads, double scale);

// The same with an additive term on the logits:
//   y[b,:,h,:] = softmax(scale * q k^T + bias[b,h]) v
// bias: (N,N), (Hb,N,N) or (Bb,Hb,N,N) with Bb in {1,B}, Hb in {1,NH} (relative position
// biases (NH,N,N), masks (B,1,N,N) with -inf entries), qkv's dtype and device. Its
// gradient is dL/dlogits summed over the broadcast dims, in a fixed order (deterministic).
// NOTE: a row whose bias is -inf everywhere gives NaN on the CPU (as PyTorch) and 0 on CUDA.
Tensor attention_qkv_bias(const Tensor& qkv, const Tensor& bias, int64_t heads, double scale);

// Whether a bias of shape `bias` is accepted by attention_qkv_bias for (B,NH,N,N) logits.
bool attention_bias_fits(const Shape& bias, int64_t B, int64_t NH, int64_t N);

// Storage precision of the CUDA attention: false (default) float32 throughout; true: q, k,
// v, o and their gradients in bf16 (fp32 accumulation, softmax statistics and I/O tensors).
// Process-wide. NOTE: stands in for kernels/gemm's matmul_precision() until that is merged.
void set_attention_bf16(bool on);
bool attention_bf16();

}  // namespace pw
