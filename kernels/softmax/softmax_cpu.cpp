// CPU kernels of softmax and log_softmax (see softmax_kernels.h).
#include <algorithm>
#include <cmath>

#include "autograd/dispatch.h"
#include "kernels/reduce/reduce_plan.h"
#include "kernels/softmax/softmax_kernels.h"
#include "kernels/softmax/softmax_math.h"

namespace pw {

namespace {

using detail::DimView;
using detail::kColBlock;

// d (+)= v: the GradBuf contract's two ways of storing a gradient element.
template <bool kAcc, class T> inline void put(T& d, T v) {
  if constexpr (kAcc) d += v;
  else d = v;
}

// y = softmax(x) (Log: log_softmax) along R.   x, y: (O, R, I).
template <bool Log, class T>
void softmax_forward_loop(T* y, const T* x, DimView v) {
  const int64_t O = v.O, R = v.R, I = v.I;
  if (O * R * I == 0) return;
  if (I == 1) {  // the reduced dim is contiguous: one row per task
#pragma omp parallel for if (O * R > kParallelGrain)
    for (int64_t o = 0; o < O; ++o) {
      const T* xr = x + o * R;
      T* yr = y + o * R;
      const T m = detail::row_max(xr, R);
      if constexpr (Log) {
        const double s = detail::lane_sum(R, [&](int64_t j) { return math::vexp(xr[j] - m); });
        const T lse = m + (T)std::log(s);
        for (int64_t j = 0; j < R; ++j) yr[j] = xr[j] - lse;
      } else {
        for (int64_t j = 0; j < R; ++j) yr[j] = math::vexp(xr[j] - m);
        const T inv = (T)(1.0 / detail::lane_sum(R, [&](int64_t j) { return yr[j]; }));
        for (int64_t j = 0; j < R; ++j) yr[j] *= inv;
      }
    }
    return;
  }
  // Strided dim: a block of columns keeps its running max and sum while r walks down.
  const int64_t nb = (I + kColBlock - 1) / kColBlock;
#pragma omp parallel for if (O * R * I > kParallelGrain)
  for (int64_t t = 0; t < O * nb; ++t) {
    const int64_t o = t / nb, i0 = (t % nb) * kColBlock, len = std::min(kColBlock, I - i0);
    const T* xb = x + o * R * I + i0;
    T* yb = y + o * R * I + i0;
    T m[kColBlock];
    double s[kColBlock];
    for (int64_t i = 0; i < len; ++i) { m[i] = xb[i]; s[i] = 0; }
    for (int64_t j = 1; j < R; ++j)
      for (int64_t i = 0; i < len; ++i) m[i] = xb[j * I + i] > m[i] ? xb[j * I + i] : m[i];
    for (int64_t j = 0; j < R; ++j)
      for (int64_t i = 0; i < len; ++i) {
        T e = math::vexp(xb[j * I + i] - m[i]);
        if constexpr (!Log) yb[j * I + i] = e;
        s[i] += e;
      }
    for (int64_t i = 0; i < len; ++i) {
      if constexpr (Log) m[i] += (T)std::log(s[i]);  // m becomes lse
      else s[i] = 1.0 / s[i];
    }
    for (int64_t j = 0; j < R; ++j)
      for (int64_t i = 0; i < len; ++i) {
        if constexpr (Log) yb[j * I + i] = xb[j * I + i] - m[i];
        else yb[j * I + i] *= (T)s[i];
      }
  }
}

// Forward was y = softmax(x) (Log: log_softmax) along R; dx (+)= dL/dx from y
// and dy (kAcc: add, else write).   dx, y, dy: (O, R, I).
template <bool Log, bool kAcc, class T>
void softmax_backward_loop(T* dx, const T* y, const T* dy, DimView v) {
  const int64_t O = v.O, R = v.R, I = v.I;
  if (O * R * I == 0) return;
  if (I == 1) {
#pragma omp parallel for if (O * R > kParallelGrain)
    for (int64_t o = 0; o < O; ++o) {
      const T* yr = y + o * R;
      const T* dyr = dy + o * R;
      T* dxr = dx + o * R;
      if constexpr (Log) {
        const T sdy = (T)detail::lane_sum(R, [&](int64_t j) { return dyr[j]; });
        for (int64_t j = 0; j < R; ++j) put<kAcc>(dxr[j], math::log_softmax_bwd(yr[j], dyr[j], sdy));
      } else {
        const T dot = (T)detail::lane_sum(R, [&](int64_t j) { return dyr[j] * yr[j]; });
        for (int64_t j = 0; j < R; ++j) put<kAcc>(dxr[j], math::softmax_bwd(yr[j], dyr[j], dot));
      }
    }
    return;
  }
  const int64_t nb = (I + kColBlock - 1) / kColBlock;
#pragma omp parallel for if (O * R * I > kParallelGrain)
  for (int64_t t = 0; t < O * nb; ++t) {
    const int64_t o = t / nb, i0 = (t % nb) * kColBlock, len = std::min(kColBlock, I - i0);
    const int64_t b = o * R * I + i0;
    double acc[kColBlock];
    for (int64_t i = 0; i < len; ++i) acc[i] = 0;
    for (int64_t j = 0; j < R; ++j)
      for (int64_t i = 0; i < len; ++i) {
        const int64_t k = b + j * I + i;
        acc[i] += Log ? (double)dy[k] : (double)dy[k] * y[k];
      }
    for (int64_t j = 0; j < R; ++j)
      for (int64_t i = 0; i < len; ++i) {
        const int64_t k = b + j * I + i;
        if constexpr (Log) put<kAcc>(dx[k], math::log_softmax_bwd(y[k], dy[k], (T)acc[i]));
        else put<kAcc>(dx[k], math::softmax_bwd(y[k], dy[k], (T)acc[i]));
      }
  }
}

template <bool Log>
void forward(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I) {
  dispatch_float(x.dtype(), Log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    softmax_forward_loop<Log>(y.data<T>(), x.data<T>(), DimView{O, R, I});
  });
}
template <bool Log>
void backward(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I) {
  dispatch_float(y.dtype(), Log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    if (dx.accumulate) softmax_backward_loop<Log, true>(dx.data<T>(), y.data<T>(), dy.data<T>(), DimView{O, R, I});
    else softmax_backward_loop<Log, false>(dx.data<T>(), y.data<T>(), dy.data<T>(), DimView{O, R, I});
  });
}

}  // namespace

void softmax_forward_cpu(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I) {
  forward<false>(y, x, O, R, I);
}
void log_softmax_forward_cpu(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I) {
  forward<true>(y, x, O, R, I);
}
void softmax_backward_cpu(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I) {
  backward<false>(dx, y, dy, O, R, I);
}
void log_softmax_backward_cpu(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I) {
  backward<true>(dx, y, dy, O, R, I);
}

}  // namespace pw
