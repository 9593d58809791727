// The kernels of local_attention_rel, one declaration per kernel and device; the
// dispatch row is in local_attention.cpp. Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise.
//
// Per head, with S(i) the keys of query i and l_ij its logits (local_attention_math.h):
//   forward   y_i = sum_{j in S(i)} p_ij v_j,  p_ij = exp(l_ij - lse_i),  lse_i saved
//   backward  p_ij recomputed from lse_i;  ds_ij = p_ij (dy_i.v_j - dy_i.y_i)
//             dq_i = scale sum_j ds_ij k_j + scale [sum_t g_i[t] row[t], sum_t g_i[K+t] col[t]]
//             dk_j = scale sum_{i: j in S(i)} ds_ij q_i;  dv_j = sum_i p_ij dy_i
//             drow[t] = scale sum_i g_i[t] q_i[:half],  dcol[t] = scale sum_i g_i[K+t] q_i[half:]
//   g_i (2K): ds_ij summed over the patch keys j of a patch query by row offset t = rj-ri+r
//   (g_i[t]) and column offset (g_i[K+t]).
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// Shapes of one call.   q, k, v, y: (B,NH,M,HD)  row, col: (K,half)  lse: (B,NH,M)
struct LocalAttnDims {
  const char* op = "local_attention_rel";  // the public op, for errors
  int64_t B = 0, NH = 0, M = 0, HD = 0;
  int64_t H = 0, W = 0, K = 0, skip = 0;    // grid, window, class tokens: M = skip + H*W
  int64_t half() const { return HD / 2; }
  int64_t r() const { return K / 2; }
  int64_t rows() const { return B * NH * M; }  // query rows over all heads
};

// What the forward keeps for its backward.
struct LocalAttnSaved {
  LocalAttnDims d;
  Tensor q, k, v, row, col;  // the inputs
  Tensor y;                  // the output (detached)   (B,NH,M,HD)
  Tensor lse;                // each row's logsumexp    (B,NH,M)
  Tensor rel;                // CUDA: the rel terms     (B,NH,M,2K) (local_rel_terms)
};

// y = local attention (above); fills s.lse (CUDA: s.rel). s.d and the inputs in s are set.
void local_attention_forward_cpu(Tensor& y, LocalAttnSaved& s);
void local_attention_forward_cuda(Tensor& y, LocalAttnSaved& s);
// Forward was y = local attention of s's inputs (above); each buffer may be empty.
// dq, dk, dv: (B,NH,M,HD)  drow, dcol: (K,half)  dy: (B,NH,M,HD)
void local_attention_backward_cpu(GradBuf dq, GradBuf dk, GradBuf dv, GradBuf drow, GradBuf dcol, const Tensor& dy,
                                  const LocalAttnSaved& s);
void local_attention_backward_cuda(GradBuf dq, GradBuf dk, GradBuf dv, GradBuf drow, GradBuf dcol, const Tensor& dy,
                                   const LocalAttnSaved& s);

}  // namespace pw
