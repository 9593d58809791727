// Fused flash attention on CUDA (FlashAttention-2 structure), forward and backward,
// with an optional additive logits term ("bias") and its gradient.
//
//   s = scale * q k^T + bias      (per (b,h): (N,N), never stored in global memory)
//   p = softmax_rows(s)           lse = logsumexp_rows(s), saved for backward
//   o = p v
//
// Plain C++ header (no CUDA types): raw device pointers, `stream` is a cudaStream_t.
// The launchers never synchronise. Implemented in flash_attention_cuda.cu, which is only
// compiled when PW_HAVE_CUDA; calls must be guarded by `#if PW_HAVE_CUDA` / kHaveCuda.
#pragma once
#include <cstdint>

namespace pw {

// bf16 storage word (the bits of a __nv_bfloat16); the .cu reinterprets it.
struct bf16_t {
  uint16_t bits;
};

// The bias is a float32 tensor of shape (Bb, Hb, N, N), contiguous, broadcast to (B,NH,N,N):
// Bb is 1 or B, Hb is 1 or NH. Examples: relative position bias (NH,N,N) -> {1, NH};
// per-sample mask (B,1,N,N) -> {B, 1}; shared mask (N,N) -> {1, 1}. Unused when the bias
// pointer is null. dbias has the bias's own shape (Bb,Hb,N,N): the sum of dL/ds over the
// broadcast dimensions.
struct FlashBiasLayout {
  int Bb = 1;  // bias batch size: 1 (broadcast) or B
  int Hb = 1;  // bias head count: 1 (broadcast) or NH
};

// Head dims supported: 16, 32, 64, 128. Others throw pw::Error naming HD.
bool flash_attention_cuda_supports_head_dim(int HD);

// o = softmax(scale * q k^T + bias) v per (b,h); lse = the rows' logsumexp.
// q, k, v, o: (B,NH,N,HD) contiguous   lse: (B,NH,N) float32   bias: (Bb,Hb,N,N) float32 or null
// T = float or bf16_t (bf16 storage, fp32 accumulation and fp32 softmax statistics).
// NOTE: a row whose logits are all -inf (fully masked) gives o = 0 and lse = -inf, and
// backward gives it zero gradients (PyTorch gives NaN there).
template <class T>
void flash_attention_forward_cuda(T* o, float* lse, const T* q, const T* k, const T* v, const float* bias,
                                  FlashBiasLayout bias_layout, int B, int NH, int N, int HD, float scale,
                                  void* stream);

// Backward of flash_attention_forward_cuda, from its saved o and lse:
//   dv = p^T do;  dp = do v^T;  ds = p * (dp - delta)  with delta = rowsum(do * o);
//   dq = scale * ds k;  dk = scale * ds^T q;  dbias = ds summed over the broadcast dims.
// dq, dk, dv: (B,NH,N,HD) are WRITTEN (=, not +=; the op layer accumulates).
// dbias: (Bb,Hb,N,N) float32, WRITTEN (=) with the broadcast-reduced sum, or null to skip
//   (then bias may still be given for the forward recomputation). Deterministic: each dbias
//   element is owned by one thread block, which adds the (b,h) terms in a fixed order.
// delta: (B,NH,N) float32 scratch supplied by the caller (the op layer's allocator).
// q, k, v, o, dout: (B,NH,N,HD)   lse: (B,NH,N)   bias: (Bb,Hb,N,N) or null
template <class T>
void flash_attention_backward_cuda(T* dq, T* dk, T* dv, float* dbias, float* delta, const T* q, const T* k,
                                   const T* v, const T* o, const T* dout, const float* lse, const float* bias,
                                   FlashBiasLayout bias_layout, int B, int NH, int N, int HD, float scale,
                                   void* stream);

// Times fwd+bwd (no bias) on random inputs on the current device, `iters` iterations after
// a warm-up, with cudaEvents, and returns TFLOP/s under the FlashAttention-2 paper's
// convention: forward 4*B*NH*N*N*HD flops, backward 2.5x forward (total 14*B*NH*N*N*HD),
// although this backward does 7 (not 5) N*N*HD matmuls since it recomputes for determinism.
double bench_flash_attention_cuda(int B, int NH, int N, int HD, bool bf16, int iters);

}  // namespace pw
