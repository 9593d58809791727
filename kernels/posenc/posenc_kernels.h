// The kernels of the position-encoding ops, one declaration per kernel and device;
// the dispatch rows are in posenc.cpp. Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise. Every kernel is
// gather-style: one thread owns each output element (or row), so no atomics.
#pragma once
#include <cstdint>

#include "autograd/function.h"
#include "kernels/posenc/posenc.h"

namespace pw {

// bias[h,i,j] = table[idx[i,j], h] (0 where idx is -1).   table: (T,NH)  bias: (NH,N,N)
void rel_bias_gather_forward_cpu(Tensor& bias, const Tensor& table, const RelIndex& r);
void rel_bias_gather_forward_cuda(Tensor& bias, const Tensor& table, const RelIndex& r);
// Forward was rel_bias_gather: dtable[t,h] (+)= sum over k in [inv_off[t], inv_off[t+1]) of
// dbias[h, inv_pos[k]].   dtable: (T,NH)  dbias: (NH,N,N)
void rel_bias_gather_backward_cpu(GradBuf dtable, const Tensor& dbias, const RelIndex& r);
void rel_bias_gather_backward_cuda(GradBuf dtable, const Tensor& dbias, const RelIndex& r);

// y[r,i,j] = x[r,i,idx[i,j]] (0 where idx is -1).   x: (R,N,T)  y: (R,N,N)
void rel_logits_gather_forward_cpu(Tensor& y, const Tensor& x, const RelIndex& r);
void rel_logits_gather_forward_cuda(Tensor& y, const Tensor& x, const RelIndex& r);
// Forward was rel_logits_gather: dx[r,i,t] (+)= sum of dy[r,i,j] over j with idx[i,j] = t.
// One thread per row (r,i).   dx: (R,N,T)  dy: (R,N,N)
void rel_logits_gather_backward_cpu(GradBuf dx, const Tensor& dy, const RelIndex& r);
void rel_logits_gather_backward_cuda(GradBuf dx, const Tensor& dy, const RelIndex& r);

// y[r,i,t] = sum of p[r,i,j] over j with idx[i,j] = t.   p: (R,N,N)  y: (R,N,T)
void rel_logits_scatter_forward_cpu(Tensor& y, const Tensor& p, const RelIndex& r);
void rel_logits_scatter_forward_cuda(Tensor& y, const Tensor& p, const RelIndex& r);
// Forward was rel_logits_scatter: dp[r,i,j] (+)= dy[r,i,idx[i,j]] (0 where idx is -1).
void rel_logits_scatter_backward_cpu(GradBuf dp, const Tensor& dy, const RelIndex& r);
void rel_logits_scatter_backward_cuda(GradBuf dp, const Tensor& dy, const RelIndex& r);

// y[r,i,j] = x[r,i,j+N-1-i].   x: (R,N,2N-1)  y: (R,N,N)
void rel_shift_forward_cpu(Tensor& y, const Tensor& x);
void rel_shift_forward_cuda(Tensor& y, const Tensor& x);
// Forward was rel_shift: dx[r,i,c] (+)= dy[r,i,c-(N-1)+i] where that key is in [0,N), else 0.
void rel_shift_backward_cpu(GradBuf dx, const Tensor& dy);
void rel_shift_backward_cuda(GradBuf dx, const Tensor& dy);

// Rotates the pairs (2m, 2m+1) of q and k by (cos, sin)[n,m]; copies v.
// y, qkv: (B,N,3,NH,HD)  cos, sin: (N,HD/2)
void rope_qkv_forward_cpu(Tensor& y, const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t NH);
void rope_qkv_forward_cuda(Tensor& y, const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t NH);
// Forward was rope_qkv: dq, dk (+)= the transpose rotation of dy; dv (+)= dy.
void rope_qkv_backward_cpu(GradBuf dqkv, const Tensor& dy, const Tensor& cos, const Tensor& sin, int64_t NH);
void rope_qkv_backward_cuda(GradBuf dqkv, const Tensor& dy, const Tensor& cos, const Tensor& sin, int64_t NH);

}  // namespace pw
