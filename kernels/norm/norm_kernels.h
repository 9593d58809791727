// The kernels of the normalisations (layer_norm, batch_norm), one declaration
// per kernel and device; the dispatch rows are in norm.cpp. Backward kernels keep
// the GradBuf contract (autograd/function.h): write a fresh buffer, add otherwise.
// Deterministic on both devices: per-row / per-channel statistics by fixed-order
// reductions, parameter gradients by fixed row chunks summed in chunk order; no
// atomics. Sums run in double.
#pragma once
#include <cstdint>

#include "autograd/function.h"
#include "kernels/norm/norm.h"

namespace pw {

// y = (x - mean) * rstd * w + b per row, two passes (the variance around the mean).
// x, y: (N,C)  w, b: (C) or undefined  mean, rstd: (N) out
void layer_norm_forward_cpu(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                            int64_t N, int64_t C, double eps);
void layer_norm_forward_cuda(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                             int64_t N, int64_t C, double eps);
// Forward was y = layer_norm(x) * w + b.   dx, dy, x: (N,C)  dw, db, w: (C) (w may be undefined)  mean, rstd: (N)
// dx (+)= norm_bwd(...) per row;  dw (+)= sum_rows dy * xhat;  db (+)= sum_rows dy.
void layer_norm_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                             const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t N, int64_t C);
void layer_norm_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                              const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t N, int64_t C);

// training: mean and rstd are the batch statistics per channel (biased variance), and
// rm, rv when defined are updated IN PLACE (momentum, unbiased variance; torch).
// eval: mean = rm, rstd from rv. Then y = (x - mean[c]) * rstd[c] * w[c] + b[c].
// sync (training only, may be null): the per-channel (count, mean, M2) are combined over the
// processes between the reduction and the rest (SyncBN, norm.h); *count gets the count of the
// normalised set (B*S, or the global count with sync).
// x, y: (B,C,S)  w, b, rm, rv: (C) or undefined  mean, rstd: (C) out
void batch_norm_forward_cpu(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                            const Tensor& b, const Tensor& rm, const Tensor& rv, int64_t B, int64_t C, int64_t S,
                            bool training, double momentum, double eps, BatchNormSync* sync, double* count);
void batch_norm_forward_cuda(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                             const Tensor& b, const Tensor& rm, const Tensor& rv, int64_t B, int64_t C, int64_t S,
                             bool training, double momentum, double eps, BatchNormSync* sync, double* count);
// Forward was y = batch_norm(x) * w + b.   dx, dy, x: (B,C,S)  dw, db, w, mean, rstd: (C) (w may be undefined)
// dw (+)= sum dy * xhat, db (+)= sum dy per channel; dx (+)= norm_bwd (training) or dy * w * rstd (eval).
// sync (training only, may be null): dx uses the two sums summed over the processes and `count`
// (forward's global count); dw, db stay this process's sums.
void batch_norm_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                             const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t B, int64_t C, int64_t S,
                             bool training, BatchNormSync* sync, double count);
void batch_norm_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x,
                              const Tensor& mean, const Tensor& rstd, const Tensor& w, int64_t B, int64_t C,
                              int64_t S, bool training, BatchNormSync* sync, double count);

}  // namespace pw
