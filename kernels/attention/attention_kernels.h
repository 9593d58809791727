// The kernels of attention_qkv and attention_qkv_bias, one declaration per kernel
// and device; the dispatch rows are in attention.cpp. CPU: per-head GEMMs and a
// row softmax (attention_cpu.cpp). CUDA: the flash kernels
// (flash_attention_cuda.h) between head split/merge permutes (attention_cuda.cu).
// Backward kernels keep the GradBuf contract (autograd/function.h): write a fresh
// buffer, add otherwise.
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// Shapes of one call.   qkv: (B,N,3,NH,HD)  y: (B,N,NH,HD)  bias: (Bb,Hb,N,N)
struct AttnDims {
  const char* op = "attention";  // the public op, for errors
  int64_t B = 0, N = 0, NH = 0, HD = 0;
  int64_t Bb = 1, Hb = 1;  // bias (Bb,Hb,N,N): 1 (broadcast) or B, NH
  // CPU only, set by its forward kernel:
  int64_t ldp = 0;     // row stride of the (N,N) probability tiles: N, or N padded to 8 for small_gemm
  bool small = false;  // float32 heads run on small_gemm (HD a multiple of 8, AVX2 kernels)
  int64_t D() const { return NH * HD; }        // row stride of y
  int64_t ld() const { return 3 * NH * HD; }   // row stride of q, k, v inside qkv
  // Offset of q[b, 0, h, 0] in qkv (k and v follow at +D and +2D), and of y[b, 0, h, 0] in y.
  int64_t q_off(int64_t b, int64_t h) const { return b * N * ld() + h * HD; }
  int64_t y_off(int64_t b, int64_t h) const { return b * N * D() + h * HD; }
  // Offset of the (N,N) bias plane that head (b,h) reads.
  int64_t bias_off(int64_t b, int64_t h) const { return ((Bb == 1 ? 0 : b) * Hb + (Hb == 1 ? 0 : h)) * N * N; }
};

// What a forward kernel keeps for its backward (each backend fills its own part).
struct AttnSaved {
  AttnDims d;
  Tensor qkv;  // CPU: the input (B,N,3*NH*HD)
  Tensor p;    // CPU: the softmax (B,NH,N,ldp)
  // CUDA: q, k, v (3,B,NH,N,HD) and o (B,NH,N,HD) in the storage precision (float32
  // or bf16, set_attention_bf16), lse (B,NH,N) float32 the rows' logsumexp.
  Tensor qkvp, o, lse;
};

// y = softmax(scale * q k^T + bias) v per head; fills s (s.d given, shapes checked).
// y: (B,N,NH*HD)  qkv: (B,N,3*NH*HD)  bias: (Bb,Hb,N,N) or undefined
// CUDA: float32 only, HD in {16, 32, 64, 128} (else a pw::Error naming s.d.op).
void attention_forward_cpu(Tensor& y, AttnSaved& s, const Tensor& qkv, const Tensor& bias, double scale);
void attention_forward_cuda(Tensor& y, AttnSaved& s, const Tensor& qkv, const Tensor& bias, double scale);
// Forward was y = softmax(scale * q k^T + bias) v per head. Per head:
//   dp = dy v^T;  ds = p * (dp - rowsum(dp * p))  (dL/dlogits)
//   dv (+)= p^T dy;  dq (+)= scale * ds k;  dk (+)= scale * ds^T q;  dbias (+)= ds summed over the broadcast dims
// dqkv: (B,N,3*NH*HD)  dbias: bias's shape  dy: (B,N,NH*HD); either buffer may be empty.
void attention_backward_cpu(GradBuf dqkv, GradBuf dbias, const Tensor& dy, const AttnSaved& s, const Tensor& bias,
                            double scale);
void attention_backward_cuda(GradBuf dqkv, GradBuf dbias, const Tensor& dy, const AttnSaved& s, const Tensor& bias,
                             double scale);

}  // namespace pw
