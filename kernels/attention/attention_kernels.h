// CUDA launchers around the flash kernels for attention_qkv / attention_qkv_bias: head
// split/merge permutes (with float32 <-> T conversion) and a float add for gradients.
// Plain C++ (no CUDA types); implemented in attention_cuda.cu, compiled only with CUDA.
// All run on cuda::stream() and never synchronise.
#pragma once
#include <cstdint>

namespace pw {

// dst (S,B,NH,N,HD) T  =  src (B,N,S,NH,HD) float32, converted (bf16: round to nearest even).
// S = 3 splits a packed qkv into q, k, v; S = 1 turns dy (B,N,NH*HD) into (B,NH,N,HD).
// T = float or bf16_t (kernels/attention/flash_attention_cuda.h).
template <class T>
void attention_split_heads_cuda(T* dst, const float* src, int64_t B, int64_t N, int64_t S, int64_t NH, int64_t HD);

// dst (B,N,S,NH,HD) float32  (=, or += when accumulate)  src (S,B,NH,N,HD) T.
// S = 1: y from the flash output o; S = 3: dqkv from dq, dk, dv.
template <class T>
void attention_merge_heads_cuda(float* dst, const T* src, int64_t B, int64_t N, int64_t S, int64_t NH, int64_t HD,
                                bool accumulate);

}  // namespace pw
