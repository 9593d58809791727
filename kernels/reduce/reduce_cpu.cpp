#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/reduce/reduce.h"
#include "kernels/reduce/reduce_cuda.h"
#include "kernels/reduce/reduce_math.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

namespace {

using detail::ReducePlan;

// The CUDA description of a reduction of x over dims (validated by make_plan first).
ReduceDesc cuda_desc(const char* op, const Shape& xs, const std::vector<int64_t>& dims) {
  std::vector<bool> red(xs.size(), dims.empty());
  for (int64_t d : dims)
    if (!xs.empty()) red[detail::wrap_dim(op, d, xs)] = true;
  return make_reduce_desc(op, xs, red);
}

// y = sum(x over plan) * scale  (scale = 1 for sum, 1/n for mean).
// x: any shape, y: plan.out_shape.
struct SumFn final : Node {
  ReducePlan plan;
  ReduceDesc desc;  // the same reduction, for CUDA
  double scale = 1;
  const char* op = "sum";
  const char* name() const override { return op; }
  // forward was y[o] = scale * sum_{k in o} x[k]; dx[k] += scale * dy[o]
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) reduce_backward_cuda<T>(g[0].data<T>(), dy.data<T>(), nullptr, nullptr, desc, scale);
        return;
      }
      const T* pdy = dy.data<T>();
      const T s = (T)scale;
      detail::broadcast_into(plan, g[0].data<T>(), [=](int64_t, int64_t o) { return s * pdy[o]; });
    });
  }
};

Tensor sum_impl(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_mean) {
  ReducePlan plan = detail::make_plan(op, x.shape(), dims, keepdim);
  // NOTE: mean over an empty set is 0/0 = NaN, as in torch.
  const double scale = is_mean ? 1.0 / (double)plan.n_red : 1.0;
  Tensor y = empty(plan.out_shape, x.dtype(), x.device());
  const ReduceDesc desc = x.device() == Device::CUDA ? cuda_desc(op, x.shape(), dims) : ReduceDesc{};
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) reduce_sum_cuda<T, T>(y.data<T>(), x.data<T>(), nullptr, desc, scale, false);
      return;
    }
    std::vector<double> acc(plan.n_out);
    detail::reduce_into(plan, x.data<T>(), acc.data(), [](T v, int64_t) { return v; });
    T* py = y.data<T>();
    for (int64_t o = 0; o < plan.n_out; ++o) py[o] = (T)(acc[o] * scale);
  });
  if (auto n = record<SumFn>(y, {x})) {
    n->plan = std::move(plan);
    n->desc = desc;
    n->scale = scale;
    n->op = op;
  }
  return y;
}

// y = sum((x - mean)^2 over plan) / (n - correction).
// x: any shape, y: plan.out_shape; mean: (n_out), saved for backward.
struct VarFn final : Node {
  ReducePlan plan;
  ReduceDesc desc;           // the same reduction, for CUDA
  Tensor x;
  std::vector<double> mean;  // (n_out), cpu
  Tensor mean_dev;           // (n_out) f64, cuda
  double scale = 0;          // 2 / (n - correction)
  const char* name() const override { return "var"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(x.dtype(), "var", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          reduce_backward_cuda<T>(g[0].data<T>(), dy.data<T>(), x.data<T>(), mean_dev.data<double>(), desc, scale);
        return;
      }
      const T* px = x.data<T>();
      const T* pdy = dy.data<T>();
      const double* m = mean.data();
      const T s = (T)scale;
      detail::broadcast_into(plan, g[0].data<T>(),
                             [=](int64_t k, int64_t o) { return math::var_bwd<T>(px[k], (T)m[o], pdy[o], s); });
    });
  }
  void release() override {
    x = Tensor();
    mean = {};
    mean_dev = Tensor();
  }
};

// y = max(x, dim).  x viewed as (O, R, I); values, indices: (O, I).
struct MaxFn final : Node {
  Tensor indices;  // (O, I) I64
  detail::DimView v;
  const char* name() const override { return "max"; }
  // forward was y[o,i] = x[o, idx[o,i], i]; dx[o, idx[o,i], i] += dy[o,i]
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), "max", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          max_dim_backward_cuda<T>(g[0].data<T>(), dy.data<T>(), indices.data<int64_t>(), v.O, v.R, v.I);
        return;
      }
      T* dx = g[0].data<T>();
      const T* pdy = dy.data<T>();
      const int64_t* idx = indices.data<int64_t>();
      const int64_t R = v.R, I = v.I, n = v.O * v.I;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t t = 0; t < n; ++t) {
        const int64_t o = t / I, i = t - o * I;
        dx[(o * R + idx[t]) * I + i] += pdy[t];
      }
    });
  }
};

// y = max of all x.  x: any shape, y: ().
struct AmaxFn final : Node {
  Tensor x;
  double best = 0;
  int64_t ties = 1;  // how many elements equal the max
  Tensor best_dev, ties_dev;  // on cuda: the max (y.detach()) and the tie count, (), kept on the device
  const char* name() const override { return "amax"; }
  // dx[k] += dy / ties where x[k] == max
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(x.dtype(), "amax", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          amax_backward_cuda<T>(g[0].data<T>(), x.data<T>(), best_dev.data<T>(), ties_dev.data<int64_t>(),
                                dy.data<T>(), x.numel());
        return;
      }
      T* dx = g[0].data<T>();
      const T* px = x.data<T>();
      const T share = dy.data<T>()[0] / (T)ties, m = (T)best;
      const int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t k = 0; k < n; ++k)
        if (px[k] == m) dx[k] += share;
    });
  }
  void release() override {
    x = Tensor();
    best_dev = Tensor();
    ties_dev = Tensor();
  }
};

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl("sum", x, {}, false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl("sum", x, dims, keepdim, false);
}
Tensor mean(const Tensor& x) { return sum_impl("mean", x, {}, false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl("mean", x, dims, keepdim, true);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  ReducePlan plan = detail::make_plan("var", x.shape(), dims, keepdim);
  // NOTE: n - correction <= 0 (one element, unbiased) gives NaN, as in torch.
  const double denom = std::max<double>((double)plan.n_red - (unbiased ? 1 : 0), 0.0);
  if (x.device() == Device::CUDA) {
    const ReduceDesc desc = cuda_desc("var", x.shape(), dims);
    Tensor y = empty(plan.out_shape, x.dtype(), Device::CUDA);
    Tensor m = empty({plan.n_out}, DType::F64, Device::CUDA);
    dispatch_float(x.dtype(), "var", [&](auto tag) {
      using T = decltype(tag);
      if constexpr (kHaveCuda) {
        // Two passes, as on the cpu: the mean (in double), then squared deviations.
        reduce_sum_cuda<T, double>(m.data<double>(), x.data<T>(), nullptr, desc, 1.0 / (double)plan.n_red, false);
        reduce_sum_cuda<T, T>(y.data<T>(), x.data<T>(), m.data<double>(), desc, 1.0 / denom, false);
      }
    });
    if (auto n = record<VarFn>(y, {x})) {
      n->desc = desc;
      n->x = x;
      n->mean_dev = m;
      n->scale = 2.0 / denom;
    }
    return y;
  }
  Tensor y = empty(plan.out_shape, x.dtype());
  std::vector<double> m(plan.n_out);
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    // Two passes (mean, then squared deviations): no cancellation, unlike E[x^2] - E[x]^2.
    detail::reduce_into(plan, px, m.data(), [](T v, int64_t) { return v; });
    const double inv_n = 1.0 / (double)plan.n_red;
    for (double& e : m) e *= inv_n;
    std::vector<double> ss(plan.n_out);
    const double* pm = m.data();
    detail::reduce_into(plan, px, ss.data(), [=](T v, int64_t o) {
      double d = (double)v - pm[o];
      return d * d;
    });
    T* py = y.data<T>();
    for (int64_t o = 0; o < plan.n_out; ++o) py[o] = (T)(ss[o] / denom);
  });
  if (auto n = record<VarFn>(y, {x})) {
    n->plan = std::move(plan);
    n->x = x;
    n->mean = std::move(m);
    n->scale = 2.0 / denom;
  }
  return y;
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = detail::wrap_dim("max", dim, x.shape());
  const detail::DimView v = detail::dim_view(x.shape(), d);
  PW_CHECK(v.R > 0, "max: cannot take the max over dim ", dim, " of size 0 in shape ", shape_str(x.shape()));
  Shape out;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k != d) out.push_back(x.shape()[k]);
    else if (keepdim) out.push_back(1);
  }
  MaxResult r{empty(out, x.dtype(), x.device()), empty(out, DType::I64, x.device())};
  dispatch_float(x.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda)
        max_dim_cuda<T>(r.values.data<T>(), r.indices.data<int64_t>(), x.data<T>(), v.O, v.R, v.I);
      return;
    }
    const T* px = x.data<T>();
    T* py = r.values.data<T>();
    int64_t* pi = r.indices.data<int64_t>();
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
  if (auto n = record<MaxFn>(r.values, {x})) {
    n->indices = r.indices;
    n->v = v;
  }
  return r;
}

Tensor amax(const Tensor& x) {
  PW_CHECK(x.numel() > 0, "amax: cannot take the max of an empty tensor of shape ", shape_str(x.shape()));
  if (x.device() == Device::CUDA) {
    Tensor y = empty({}, x.dtype(), Device::CUDA);
    Tensor idx = empty({}, DType::I64, Device::CUDA);
    Tensor ties = empty({}, DType::I64, Device::CUDA);
    dispatch_float(x.dtype(), "amax", [&](auto tag) {
      using T = decltype(tag);
      if constexpr (kHaveCuda) {
        max_dim_cuda<T>(y.data<T>(), idx.data<int64_t>(), x.data<T>(), 1, x.numel(), 1);
        count_equal_cuda<T>(ties.data<int64_t>(), x.data<T>(), y.data<T>(), x.numel());
      }
    });
    if (auto n = record<AmaxFn>(y, {x})) {
      n->x = x;
      n->best_dev = y.detach();
      n->ties_dev = ties;
    }
    return y;
  }
  Tensor y = empty({}, x.dtype());
  double best = 0;
  int64_t ties = 0;
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
    best = (double)b;
    int64_t cnt = 0;
#pragma omp parallel for reduction(+ : cnt) if (n > kParallelGrain)
    for (int64_t k = 0; k < n; ++k) cnt += px[k] == b;
    ties = std::max<int64_t>(cnt, 1);  // NOTE: a NaN max equals nothing: no element gets a gradient
  });
  if (auto n = record<AmaxFn>(y, {x})) {
    n->x = x;
    n->best = best;
    n->ties = ties;
  }
  return y;
}

}  // namespace pw
