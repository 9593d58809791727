#include <algorithm>
#include <cmath>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/reduce/reduce_plan.h"
#include "kernels/softmax/softmax.h"
#include "kernels/softmax/softmax_cuda.h"
#include "kernels/softmax/softmax_math.h"

namespace pw {

namespace {

using detail::DimView;
using detail::kColBlock;

// y = softmax(x) (Log: log_softmax) along R.   x, y: (O, R, I).
template <bool Log, class T>
void softmax_forward_cpu(T* y, const T* x, DimView v) {
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

// Forward was y = softmax(x) (Log: log_softmax) along R; dx += dL/dx from y and dy.
// dx, y, dy: (O, R, I).
template <bool Log, class T>
void softmax_backward_cpu(T* dx, const T* y, const T* dy, DimView v) {
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
        for (int64_t j = 0; j < R; ++j) dxr[j] += math::log_softmax_bwd(yr[j], dyr[j], sdy);
      } else {
        const T dot = (T)detail::lane_sum(R, [&](int64_t j) { return dyr[j] * yr[j]; });
        for (int64_t j = 0; j < R; ++j) dxr[j] += math::softmax_bwd(yr[j], dyr[j], dot);
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
        if constexpr (Log) dx[k] += math::log_softmax_bwd(y[k], dy[k], (T)acc[i]);
        else dx[k] += math::softmax_bwd(y[k], dy[k], (T)acc[i]);
      }
  }
}

// y = softmax(x) or log_softmax(x) along a dim.  x, y: (O, R, I) around the dim.
template <bool Log>
struct SoftmaxFn final : Node {
  Tensor y;  // the op's output, detached
  DimView v;
  const char* name() const override { return Log ? "log_softmax" : "softmax"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(y.dtype(), name(), [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) softmax_backward_cuda<Log>(g[0].data<T>(), y.data<T>(), dy.data<T>(), v.O, v.R, v.I);
        return;
      }
      softmax_backward_cpu<Log>(g[0].data<T>(), y.data<T>(), dy.data<T>(), v);
    });
  }
  void release() override { y = Tensor(); }
};

template <bool Log>
Tensor softmax_impl(const Tensor& x, int64_t dim) {
  const char* op = Log ? "log_softmax" : "softmax";
  const int64_t d = detail::wrap_dim(op, dim, x.shape());
  const DimView v = detail::dim_view(x.shape(), d);
  Tensor y = empty_like(x);
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) softmax_forward_cuda<Log>(y.data<T>(), x.data<T>(), v.O, v.R, v.I);
      return;
    }
    softmax_forward_cpu<Log>(y.data<T>(), x.data<T>(), v);
  });
  if (auto n = record<SoftmaxFn<Log>>(y, {x})) {
    n->y = y.detach();
    n->v = v;
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl<false>(x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl<true>(x, dim); }

}  // namespace pw
