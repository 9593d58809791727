// CUDA launchers of the normalisations. Deterministic: per-row / per-channel
// statistics by fixed-order block reductions, parameter gradients by fixed row
// chunks summed in chunk order; no atomics. Sums run in double.
#pragma once
#include <cstdint>

namespace pw {

// y = (x - mean) * rstd * w + b per row, two passes.   x, y: (N,C)  w, b: (C) or null  mean, rstd: (N)
template <class T>
void layer_norm_forward_cuda(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t N, int64_t C,
                             double eps);
// Forward was y = layer_norm(x) * w + b.   dx, dy, x: (N,C)  dw, db, w: (C) or null  mean, rstd: (N)
// dx += norm_bwd(...) per row;  dw += sum_rows dy * xhat;  db += sum_rows dy.
template <class T>
void layer_norm_backward_cuda(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                              const T* w, int64_t N, int64_t C);

// training: batch mean and rstd per channel (biased variance), and when rm, rv are
// given the running statistics updated in place (unbiased variance, torch).
// eval: mean = rm, rstd from rv.   x: (B,C,S)  mean, rstd, rm, rv: (C)
template <class T>
void batch_norm_stats_cuda(T* mean, T* rstd, T* rm, T* rv, const T* x, int64_t B, int64_t C, int64_t S, bool training,
                           double momentum, double eps);
// y = (x - mean[c]) * rstd[c] * w[c] + b[c].   x, y: (B,C,S)  the rest: (C), w, b may be null
template <class T>
void batch_norm_apply_cuda(T* y, const T* x, const T* mean, const T* rstd, const T* w, const T* b, int64_t B,
                           int64_t C, int64_t S);
// Forward was y = batch_norm(x) * w + b.   dx, dy, x: (B,C,S)  dw, db, w, mean, rstd: (C), may be null
// dw += sum dy * xhat, db += sum dy per channel; dx += norm_bwd (training) or dy * w * rstd (eval).
// sums: (2C) doubles of scratch.
template <class T>
void batch_norm_backward_cuda(T* dx, T* dw, T* db, double* sums, const T* dy, const T* x, const T* mean,
                              const T* rstd, const T* w, int64_t B, int64_t C, int64_t S, bool training);

}  // namespace pw
