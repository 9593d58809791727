// The kernels of linear_attention_qkv, one declaration per kernel and device; the
// dispatch row is in linear_attention.cpp. Backward kernels keep the GradBuf
// contract (autograd/function.h): write a fresh buffer, add otherwise.
//
// Per head, with phi the feature map (linear_attention_math.h), m the key mask and
// V1 = [V, 1] (N, E = HD + 1):
//   state  S1 = sum_j m_j phi(k_j) [v_j, 1]^T         (F, E)   (causal: prefix sums j <= i)
//   raw    nd_i = phi(q_i)^T S1                        (E)      numerator (HD) and normaliser
//   y_i    = nd_i[:HD] / (nd_i[HD] + eps)
// O(N F E) per head instead of softmax attention's O(N^2 HD).
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// Shapes of one call.   qkv: (B,N,3,NH,HD)  y: (B,N,NH,HD)  key mask: (B,N)
struct LinAttnDims {
  const char* op = "linear_attention_qkv";  // the public op, for errors
  int64_t B = 0, N = 0, NH = 0, HD = 0;
  int fm = 0;           // math::LinFeatureMap
  bool causal = false;  // query i reads keys j <= i only
  int64_t F() const { return fm == 0 ? HD + 1 : HD; }  // features per row (math::lin_features)
  int64_t E() const { return HD + 1; }                  // [v, 1]
  int64_t D() const { return NH * HD; }                 // row stride of y
  int64_t ld() const { return 3 * NH * HD; }            // row stride of q, k, v inside qkv
  // Offset of q[b, 0, h, 0] in qkv (k and v follow at +D and +2D), and of y[b, 0, h, 0] in y.
  int64_t q_off(int64_t b, int64_t h) const { return b * N * ld() + h * HD; }
  int64_t y_off(int64_t b, int64_t h) const { return b * N * D() + h * HD; }
};

// What a forward kernel keeps for its backward (each backend fills its own part).
struct LinAttnSaved {
  LinAttnDims d;
  Tensor qkv;   // the input (B,N,3*NH*HD)
  Tensor mask;  // the key mask (B,N) or undefined
  Tensor state; // S1 (B,NH,F,E); non-causal only (causal recomputes its prefix sums)
  Tensor den;   // CPU: (B,NH,N) the normalisers nd_i[HD] + eps
  // CUDA: phi(q), phi(k) (B,NH,N,F) (phi(k) masked), nd (B,NH,N,E) the raw sums.
  Tensor phiq, phik, nd;
};

// y = linear attention of q, k, v per head (above); fills s (s.d given, shapes checked).
// y: (B,N,NH*HD)  qkv: (B,N,3*NH*HD)  mask: (B,N) or undefined
// CUDA: HD <= 128 (the causal scans keep a row of the state per thread).
void linear_attention_forward_cpu(Tensor& y, LinAttnSaved& s, const Tensor& qkv, const Tensor& mask);
void linear_attention_forward_cuda(Tensor& y, LinAttnSaved& s, const Tensor& qkv, const Tensor& mask);
// Forward was y_i = nd_i[:HD] / den_i, nd_i = phi(q_i)^T S1, den_i = nd_i[HD] + eps. Per head:
//   g_i = [dy_i / den_i, -(dy_i . y_i) / den_i]          (E)  dL/dnd_i
//   dphi(q_i) = S1_i g_i;   dS1 = sum_i phi(q_i) g_i^T  (causal: suffix sums i >= j)
//   dphi(k_j) = dS1_j [v_j, 1];   dv_j (+)= (dS1_j^T phi(k_j))[:HD]
//   dq, dk (+)= the feature map's vector-Jacobian products (math::lin_phi_bwd)
// dqkv: (B,N,3*NH*HD)  dy: (B,N,NH*HD)
void linear_attention_backward_cpu(GradBuf dqkv, const Tensor& dy, const LinAttnSaved& s);
void linear_attention_backward_cuda(GradBuf dqkv, const Tensor& dy, const LinAttnSaved& s);

}  // namespace pw
