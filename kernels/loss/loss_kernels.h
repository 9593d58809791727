// The kernels of the classification losses (cross_entropy, cross_entropy_soft),
// one declaration per kernel and device; the dispatch rows are in loss.cpp.
// Backward kernels keep the GradBuf contract (autograd/function.h): write a fresh
// buffer, add otherwise. Deterministic on both devices: row statistics by
// fixed-order reductions in double, the batch mean summed in row order.
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// y = mean_b ce_row_loss(lse_b, x[b, t_b], mean_c x[b, c], eps), the labels already checked.
// x: (B,C)  t: (B) I64  y: ()  lse: (B) F64 out, on x's device
void cross_entropy_forward_cpu(Tensor& y, Tensor& lse, const Tensor& x, const Tensor& t, int64_t B, int64_t C,
                               double eps);
void cross_entropy_forward_cuda(Tensor& y, Tensor& lse, const Tensor& x, const Tensor& t, int64_t B, int64_t C,
                                double eps);
// dx[b,c] (+)= dy/B * (softmax[b,c] - eps/C - (1-eps)[c == t_b]).   dx, x: (B,C)  t, lse: (B)  dy: ()
void cross_entropy_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& x, const Tensor& t, const Tensor& lse,
                                int64_t B, int64_t C, double eps);
void cross_entropy_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& x, const Tensor& t, const Tensor& lse,
                                 int64_t B, int64_t C, double eps);

// y = mean_b sum_c q[b,c] (lse_b - x[b,c]).   x, q: (B,C)  y: ()  lse, sum_q: (B) F64 out
void cross_entropy_soft_forward_cpu(Tensor& y, Tensor& lse, Tensor& sum_q, const Tensor& x, const Tensor& q,
                                    int64_t B, int64_t C);
void cross_entropy_soft_forward_cuda(Tensor& y, Tensor& lse, Tensor& sum_q, const Tensor& x, const Tensor& q,
                                     int64_t B, int64_t C);
// dx (+)= dy/B (S_b p - q), dq (+)= dy/B (lse_b - x).   dx, dq, x, q: (B,C)  lse, sum_q: (B)  dy: ()
void cross_entropy_soft_backward_cpu(GradBuf dx, GradBuf dq, const Tensor& dy, const Tensor& x, const Tensor& q,
                                     const Tensor& lse, const Tensor& sum_q, int64_t B, int64_t C);
void cross_entropy_soft_backward_cuda(GradBuf dx, GradBuf dq, const Tensor& dy, const Tensor& x, const Tensor& q,
                                      const Tensor& lse, const Tensor& sum_q, int64_t B, int64_t C);

// ---- CTC (loss_math.h) ----
// Per sample b: nll[b] = -log sum over the alignments of targets[b, :S_b] in lp[b, :T_b] (inf
// when T_b frames cannot hold them; 0 then with zero_inf). alpha: (B,T,2S+1) F64 out, the
// forward variables (rows t >= T_b and states s > 2 S_b left unwritten).
//   lp: (B,T,C) f32/f64  tgt: (B,S) I64  in_len, tgt_len: (B) I64 (checked)  y: (B) lp's dtype  nll: (B) F64
void ctc_forward_cpu(Tensor& y, Tensor& nll, Tensor& alpha, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                     const Tensor& tgt_len, int64_t blank, bool zero_inf);
void ctc_forward_cuda(Tensor& y, Tensor& nll, Tensor& alpha, const Tensor& lp, const Tensor& tgt,
                      const Tensor& in_len, const Tensor& tgt_len, int64_t blank, bool zero_inf);
// dlp[b,t,c] (+)= dy[b] * d nll[b] / d lp[b,t,c] (beta by the backward recursion); 0 for t >= T_b
// and for a sample whose nll is infinite.   dlp, lp: (B,T,C)  dy: (B)
void ctc_backward_cpu(GradBuf dlp, const Tensor& dy, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                      const Tensor& tgt_len, const Tensor& alpha, const Tensor& nll, int64_t blank);
void ctc_backward_cuda(GradBuf dlp, const Tensor& dy, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                       const Tensor& tgt_len, const Tensor& alpha, const Tensor& nll, int64_t blank);

}  // namespace pw
