// Fused multi-head self-attention core, on the packed output of a qkv projection.
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// qkv: (B,N,3*NH*HD), read as (B,N,3,NH,HD): q, k, v = qkv[:,:,0], [:,:,1], [:,:,2].
// y: (B,N,NH*HD), y[b,:,h,:] = softmax(scale * q[b,:,h] k[b,:,h]^T) v[b,:,h] per head h.
// The same values as the composition permute/chunk/matmul/softmax/matmul/permute, with
// no head-split copies: every GEMM reads q, k, v in place with a row stride of 3*NH*HD.
Tensor attention_qkv(const Tensor& qkv, int64_t heads, double scale);

}  // namespace pw
