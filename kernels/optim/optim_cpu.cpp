// CPU kernels of the optimizer family (optim_kernels.h): one loop per tensor,
// the element math of optim_math.h. Elementwise loops run on every thread for
// large tensors (each element's result is independent of the split); the norm
// sums each tensor serially, in index order, so it is the same number at every
// thread count.
#include <cmath>

#include "autograd/dispatch.h"
#include "kernels/optim/optim_kernels.h"
#include "kernels/optim/optim_math.h"

namespace pw {

namespace {
// a and b are defined, of one dtype and one size.   a, b: any shape, same numel
void check_pair(const char* op, const char* what, size_t k, const Tensor& a, const Tensor& b) {
  PW_CHECK(a.defined() && b.defined() && a.dtype() == b.dtype() && a.numel() == b.numel(), op, ": tensor ", k, ": ",
           what, " ", a.defined() ? a.str() : std::string("(undefined)"), " does not match ",
           b.defined() ? b.str() : std::string("(undefined)"));
}
}  // namespace

void adamw_step_cpu(const std::vector<AdamWSlot>& ts, const AdamWArgs& a) {
  for (size_t k = 0; k < ts.size(); ++k) {
    const AdamWSlot& s = ts[k];
    check_pair("adamw_step", "gradient", k, s.g, s.p);
    check_pair("adamw_step", "exp_avg", k, s.m, s.p);
    check_pair("adamw_step", "exp_avg_sq", k, s.v, s.p);
    // The tensor's coefficients in double, then cast (the CUDA kernel does the same).
    const double t = (double)s.step;
    const double bc1 = 1 - std::pow(a.beta1, t), bc2 = 1 - std::pow(a.beta2, t);
    const double step_size = a.lr / bc1, bc2_sqrt = std::sqrt(bc2);
    const double wd = s.decay ? a.weight_decay : 0.0;
    dispatch_float(s.p.dtype(), "adamw_step", [&](auto tag) {
      using T = decltype(tag);
      T* p = s.p.data<T>();
      const T* g = s.g.data<T>();
      T* m = s.m.data<T>();
      T* v = s.v.data<T>();
      const int64_t n = s.p.numel();
      const T b1 = (T)a.beta1, b2 = (T)a.beta2, decay = (T)(1 - a.lr * wd), ss = (T)step_size, bs = (T)bc2_sqrt,
              e = (T)a.eps;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) math::adamw_update(p[i], m[i], v[i], g[i], b1, b2, decay, ss, bs, e);
    });
  }
}

void sgd_step_cpu(const std::vector<SgdSlot>& ts, const SgdArgs& a) {
  for (size_t k = 0; k < ts.size(); ++k) {
    const SgdSlot& s = ts[k];
    check_pair("sgd_step", "gradient", k, s.g, s.p);
    if (s.buf.defined()) check_pair("sgd_step", "momentum buffer", k, s.buf, s.p);
    const double wd = s.decay ? a.weight_decay : 0.0;
    dispatch_float(s.p.dtype(), "sgd_step", [&](auto tag) {
      using T = decltype(tag);
      T* p = s.p.data<T>();
      const T* g = s.g.data<T>();
      T* buf = s.buf.defined() ? s.buf.data<T>() : nullptr;
      const int64_t n = s.p.numel();
      const T mu = (T)a.momentum, w = (T)wd, l = (T)a.lr;
      const bool nesterov = a.nesterov, first = s.first;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) math::sgd_update(p[i], buf ? buf + i : nullptr, g[i], l, mu, w, nesterov, first);
    });
  }
}

void global_norm_cpu(Tensor& norm, const std::vector<Tensor>& xs) {
  double total = 0;
  for (const Tensor& x : xs) {
    dispatch_float(x.dtype(), "global_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* d = x.data<T>();
      double s = 0;
      for (int64_t i = 0, n = x.numel(); i < n; ++i) s += (double)d[i] * d[i];
      total += s;
    });
  }
  norm.data<double>()[0] = std::sqrt(total);
}

void clip_to_norm_cpu(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm) {
  const double coef = max_norm / (norm.data<double>()[0] + 1e-6);
  if (coef >= 1) return;  // torch: no scaling at all
  for (const Tensor& x : xs) {
    dispatch_float(x.dtype(), "clip_to_norm", [&](auto tag) {
      using T = decltype(tag);
      T* d = x.data<T>();
      const T c = (T)coef;
      const int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) d[i] *= c;
    });
  }
}

void ema_update_cpu(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay) {
  for (size_t k = 0; k < xs.size(); ++k) {
    check_pair("ema_update", "average", k, ema[k], xs[k]);
    dispatch_float(xs[k].dtype(), "ema_update", [&](auto tag) {
      using T = decltype(tag);
      T* e = ema[k].data<T>();
      const T* x = xs[k].data<T>();
      const T d = (T)decay;
      const int64_t n = xs[k].numel();
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) e[i] = math::ema_update(e[i], x[i], d);
    });
  }
}

}  // namespace pw
