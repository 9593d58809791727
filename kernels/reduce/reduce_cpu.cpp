// CPU kernels of the reductions: compute only, no graph, no device test. The
// loops are reduce_plan.h's, summing in double in an order fixed by the shapes,
// so results never depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/dispatch.h"
#include "kernels/reduce/reduce_kernels.h"
#include "kernels/reduce/reduce_math.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

void sum_forward_cpu(Tensor& y, const Tensor& x, const ReduceSpec& r, double scale) {
  const detail::ReducePlan& plan = r.plan;
  dispatch_float(x.dtype(), r.op, [&](auto tag) {
    using T = decltype(tag);
    std::vector<double> acc(plan.n_out);
    detail::reduce_into(plan, x.data<T>(), acc.data(), [](T v, int64_t) { return v; });
    T* py = y.data<T>();
    for (int64_t o = 0; o < plan.n_out; ++o) py[o] = (T)(acc[o] * scale);
  });
}

void sum_backward_cpu(GradBuf dx, const Tensor& dy, const ReduceSpec& r, double scale) {
  dispatch_float(dy.dtype(), r.op, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    const T s = (T)scale;
    auto e = [=](int64_t, int64_t o) { return s * pdy[o]; };
    if (dx.accumulate) detail::broadcast_into<true>(r.plan, dx.data<T>(), e);
    else detail::broadcast_into<false>(r.plan, dx.data<T>(), e);
  });
}

void var_forward_cpu(Tensor& y, Tensor& mean, const Tensor& x, const ReduceSpec& r, double denom) {
  const detail::ReducePlan& plan = r.plan;
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    double* m = mean.data<double>();
    // Two passes (mean, then squared deviations): no cancellation, unlike E[x^2] - E[x]^2.
    detail::reduce_into(plan, px, m, [](T v, int64_t) { return v; });
    const double inv_n = 1.0 / (double)plan.n_red;
    for (int64_t o = 0; o < plan.n_out; ++o) m[o] *= inv_n;
    std::vector<double> ss(plan.n_out);
    const double* pm = m;
    detail::reduce_into(plan, px, ss.data(), [=](T v, int64_t o) {
      double d = (double)v - pm[o];
      return d * d;
    });
    T* py = y.data<T>();
    for (int64_t o = 0; o < plan.n_out; ++o) py[o] = (T)(ss[o] / denom);
  });
}

void var_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& mean, const Tensor& dy, const ReduceSpec& r,
                      double scale) {
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    const double* m = mean.data<double>();
    const T s = (T)scale;
    auto e = [=](int64_t k, int64_t o) { return math::var_bwd<T>(px[k], (T)m[o], pdy[o], s); };
    if (dx.accumulate) detail::broadcast_into<true>(r.plan, dx.data<T>(), e);
    else detail::broadcast_into<false>(r.plan, dx.data<T>(), e);
  });
}

void max_forward_cpu(Tensor& values, Tensor& indices, const Tensor& x, detail::DimView v) {
  dispatch_float(x.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = values.data<T>();
    int64_t* pi = indices.data<int64_t>();
    const int64_t O = v.O, R = v.R, I = v.I;
    if (I == 1) {  // max along contiguous rows: a vectorised pass for the value, then its first index
#pragma omp parallel for if (O * R > kParallelGrain)
      for (int64_t o = 0; o < O; ++o) {
        const T* row = px + o * R;
        T acc[8];
        bool nan[8];
        for (int j = 0; j < 8; ++j) { acc[j] = row[0]; nan[j] = false; }
        int64_t j0 = 0;
        for (; j0 + 8 <= R; j0 += 8)
          for (int j = 0; j < 8; ++j) {
            const T e = row[j0 + j];
            acc[j] = e > acc[j] ? e : acc[j];
            nan[j] = nan[j] | (e != e);
          }
        for (; j0 < R; ++j0) {
          acc[0] = row[j0] > acc[0] ? row[j0] : acc[0];
          nan[0] = nan[0] | (row[j0] != row[j0]);
        }
        T best = acc[0];
        bool any_nan = nan[0];
        for (int j = 1; j < 8; ++j) {
          best = acc[j] > best ? acc[j] : best;
          any_nan = any_nan | nan[j];
        }
        int64_t bi = 0;
        if (any_nan) {  // max propagates NaN: the first NaN is the answer
          while (row[bi] == row[bi]) ++bi;
        } else {
          while (row[bi] != best) ++bi;
        }
        py[o] = row[bi];
        pi[o] = bi;
      }
      return;
    }
    // Columns: a block of outputs keeps running maxima while r walks down.
    const int64_t nb = (I + detail::kColBlock - 1) / detail::kColBlock;
#pragma omp parallel for if (O * R * I > kParallelGrain)
    for (int64_t t = 0; t < O * nb; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * detail::kColBlock, len = std::min(detail::kColBlock, I - i0);
      T* best = py + o * I + i0;
      int64_t* bi = pi + o * I + i0;
      const T* base = px + o * R * I + i0;
      for (int64_t i = 0; i < len; ++i) { best[i] = base[i]; bi[i] = 0; }
      for (int64_t j = 1; j < R; ++j) {
        const T* row = base + j * I;
        for (int64_t i = 0; i < len; ++i)
          if (math::max_takes(row[i], best[i])) { best[i] = row[i]; bi[i] = j; }
      }
    }
  });
}

void max_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& indices, detail::DimView v) {
  dx.zero_if_fresh();  // a scatter: only the argmax elements get a gradient
  dispatch_float(dy.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    T* pdx = dx.data<T>();
    const T* pdy = dy.data<T>();
    const int64_t* idx = indices.data<int64_t>();
    const int64_t R = v.R, I = v.I, n = v.O * v.I;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t t = 0; t < n; ++t) {
      const int64_t o = t / I, i = t - o * I;
      pdx[(o * R + idx[t]) * I + i] += pdy[t];
    }
  });
}

void amax_forward_cpu(Tensor& y, Tensor& ties, const Tensor& x) {
  dispatch_float(x.dtype(), "amax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const int64_t n = x.numel(), C = detail::kSumChunk, nc = (n + C - 1) / C;
    // Per-chunk maxima, then merged in chunk order (max is exact; NaN still wins).
    std::vector<T> part(nc);
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t c = 0; c < nc; ++c) {
      const T* p = px + c * C;
      const int64_t len = std::min(C, n - c * C);
      T b = p[0];
      for (int64_t i = 1; i < len; ++i)
        if (math::max_takes(p[i], b)) b = p[i];
      part[c] = b;
    }
    T b = part[0];
    for (int64_t c = 1; c < nc; ++c)
      if (math::max_takes(part[c], b)) b = part[c];
    y.data<T>()[0] = b;
    int64_t cnt = 0;
#pragma omp parallel for reduction(+ : cnt) if (n > kParallelGrain)
    for (int64_t k = 0; k < n; ++k) cnt += px[k] == b;
    ties.data<int64_t>()[0] = std::max<int64_t>(cnt, 1);  // NOTE: a NaN max equals nothing: no element gets a gradient
  });
}

void amax_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& y, const Tensor& ties, const Tensor& dy) {
  dispatch_float(x.dtype(), "amax", [&](auto tag) {
    using T = decltype(tag);
    T* pdx = dx.data<T>();
    const T* px = x.data<T>();
    const T share = dy.data<T>()[0] / (T)ties.data<int64_t>()[0], m = y.data<T>()[0];
    const int64_t n = x.numel();
    if (dx.accumulate) {
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t k = 0; k < n; ++k)
        if (px[k] == m) pdx[k] += share;
    } else {
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t k = 0; k < n; ++k) pdx[k] = px[k] == m ? share : T(0);
    }
  });
}

}  // namespace pw
