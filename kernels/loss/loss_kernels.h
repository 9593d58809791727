// CUDA launchers of the classification losses: one block per row for the row
// statistics (fixed-order block reductions in double), the batch mean by one
// block in a fixed order; no atomics.
#pragma once
#include <cstdint>

namespace pw {

// y[0] = mean_b ce_row_loss(lse_b, x[b, t_b], mean_c x[b, c], eps).   x: (B,C)  t: (B)  lse: (B) out  y: ()
// rows: (B) doubles of scratch.
template <class T>
void cross_entropy_forward_cuda(T* y, double* lse, double* rows, const T* x, const int64_t* t, int64_t B, int64_t C,
                                double eps);
// dx[b,c] += dy[0]/B * (softmax[b,c] - eps/C - (1-eps)[c == t_b]).   dx, x: (B,C)  t, lse: (B)  dy: ()
template <class T>
void cross_entropy_backward_cuda(T* dx, const T* dy, const T* x, const int64_t* t, const double* lse, int64_t B,
                                 int64_t C, double eps);
// y[0] = mean_b sum_c q[b,c] (lse_b - x[b,c]).   x, q: (B,C)  lse, sum_q: (B) out  y: ()  rows: (B) scratch
template <class T>
void cross_entropy_soft_forward_cuda(T* y, double* lse, double* sum_q, double* rows, const T* x, const T* q, int64_t B,
                                     int64_t C);
// dx += dy/B (S_b p - q), dq += dy/B (lse_b - x).   dx, dq (may be null), x, q: (B,C)  lse, sum_q: (B)  dy: ()
template <class T>
void cross_entropy_soft_backward_cuda(T* dx, T* dq, const T* dy, const T* x, const T* q, const double* lse,
                                      const double* sum_q, int64_t B, int64_t C);

}  // namespace pw
