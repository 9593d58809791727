#include <cmath>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/loss/loss.h"
#include "kernels/loss/loss_cuda.h"
#include "kernels/loss/loss_math.h"
#include "kernels/reduce/reduce_plan.h"

namespace pw {

namespace {

// logsumexp of one row of C logits, with the max subtracted so exp cannot overflow.
template <class T>
double row_lse(const T* x, int64_t C) {
  const T m = detail::row_max(x, C);
  return (double)m + std::log(detail::lane_sum(C, [&](int64_t c) { return math::vexp(x[c] - m); }));
}

// Sum of per-row losses in row order, divided by B: the mean never depends on the threads.
inline double ordered_mean(const std::vector<double>& rows) {
  double s = 0;
  for (double r : rows) s += r;
  return s / (double)rows.size();  // NOTE: B = 0 gives NaN, as torch's mean reduction does
}

void check_logits(const char* op, const Tensor& logits) {
  PW_CHECK(logits.dim() == 2, op, ": expected logits of shape (B,C), got ", logits.str());
  PW_CHECK(logits.size(1) > 0, op, ": logits ", logits.str(), " have no classes (C = 0)");
}

// loss = mean_b ce(logits[b], target[b]).  logits: (B,C), target: (B), lse: (B).
struct CrossEntropyFn final : Node {
  Tensor logits, target;
  std::vector<double> lse;  // (B) logsumexp of each row
  Tensor lse_cuda;          // (B) f64, the same on CUDA
  double eps = 0;
  const char* name() const override { return "cross_entropy"; }
  // dlogits[b,c] += dy/B * (softmax[b,c] - (1-eps)[c == t_b] - eps/C)
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          cross_entropy_backward_cuda<T>(g[0].data<T>(), dy.data<T>(), logits.data<T>(), target.data<int64_t>(),
                                         lse_cuda.data<double>(), logits.size(0), logits.size(1), eps);
        return;
      }
      const int64_t B = logits.size(0), C = logits.size(1);
      const T* x = logits.data<T>();
      const int64_t* t = target.data<int64_t>();
      T* dx = g[0].data<T>();
      const T scale = dy.data<T>()[0] / (T)B, e_c = (T)(eps / (double)C);
#pragma omp parallel for if (B * C > kParallelGrain)
      for (int64_t b = 0; b < B; ++b) {
        const T l = (T)lse[b];
        const T* xr = x + b * C;
        T* dxr = dx + b * C;
        // One += per element (the accumulation contract: a second backward adds exactly the
        // same values), so the target's term joins its own element rather than a second pass.
        const int64_t tb = t[b];
        for (int64_t c = 0; c < tb; ++c) dxr[c] += math::ce_bwd(xr[c], l, e_c, scale);
        dxr[tb] += math::ce_bwd(xr[tb], l, e_c, scale) + math::ce_bwd_target((T)eps, scale);
        for (int64_t c = tb + 1; c < C; ++c) dxr[c] += math::ce_bwd(xr[c], l, e_c, scale);
      }
    });
  }
  void release() override {
    logits = Tensor();
    target = Tensor();
    lse_cuda = Tensor();
    lse = {};
  }
};

// loss = mean_b sum_c -q[b,c] log_softmax(logits)[b,c].  logits, q: (B,C); lse, sum_q: (B).
struct CrossEntropySoftFn final : Node {
  Tensor logits, q;
  std::vector<double> lse, sum_q;  // (B)
  Tensor lse_cuda, sum_q_cuda;     // (B) f64, the same on CUDA
  const char* name() const override { return "cross_entropy_soft"; }
  // dlogits[b,c] += dy/B (S_b p[b,c] - q[b,c]);  dq[b,c] += dy/B (lse_b - logits[b,c])
  void backward(const Tensor& dy, Grads& g) override {
    dispatch_float(logits.dtype(), "cross_entropy_soft", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda)
          cross_entropy_soft_backward_cuda<T>(g.needs(0) ? g[0].data<T>() : nullptr,
                                              g.needs(1) ? g[1].data<T>() : nullptr, dy.data<T>(), logits.data<T>(),
                                              q.data<T>(), lse_cuda.data<double>(), sum_q_cuda.data<double>(),
                                              logits.size(0), logits.size(1));
        return;
      }
      const int64_t B = logits.size(0), C = logits.size(1);
      const T* x = logits.data<T>();
      const T* pq = q.data<T>();
      const T scale = dy.data<T>()[0] / (T)B;
      T* dx = g.needs(0) ? g[0].data<T>() : nullptr;
      T* dq = g.needs(1) ? g[1].data<T>() : nullptr;
#pragma omp parallel for if (B * C > kParallelGrain)
      for (int64_t b = 0; b < B; ++b) {
        const T l = (T)lse[b], s = (T)sum_q[b];
        const int64_t r = b * C;
        if (dx)
          for (int64_t c = 0; c < C; ++c) dx[r + c] += math::soft_ce_dx(x[r + c], pq[r + c], l, s, scale);
        if (dq)
          for (int64_t c = 0; c < C; ++c) dq[r + c] += math::soft_ce_dq(x[r + c], l, scale);
      }
    });
  }
  void release() override {
    logits = Tensor();
    q = Tensor();
    lse_cuda = sum_q_cuda = Tensor();
    lse = sum_q = {};
  }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  const char* op = "cross_entropy";
  check_logits(op, logits);
  check_same_device(op, logits, target);
  PW_CHECK(target.dtype() == DType::I64, op, ": target must hold I64 class ids, got ", target.str(),
           " (for class probabilities use cross_entropy_soft)");
  PW_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), op, ": target ", target.str(),
           " does not match logits ", logits.str(), "; expected target of shape (B) = [", logits.size(0), "]");
  PW_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
           label_smoothing);
  const int64_t B = logits.size(0), C = logits.size(1);
  // NOTE: on CUDA the labels are copied to the host to be checked (a sync): a bad label must be
  // a pw::Error naming it, not an out-of-bounds read in a kernel.
  const Tensor target_host = target.device() == Device::CUDA ? target.cpu() : target;
  const int64_t* t = target_host.data<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    PW_CHECK(t[b] >= 0 && t[b] < C, op, ": target label ", t[b], " at position ", b, " is out of range for C = ", C,
             " classes (logits ", logits.str(), "); labels must be in [0, ", C - 1, "]");

  if (logits.device() == Device::CUDA) {
    Tensor y = empty({}, logits.dtype(), Device::CUDA);
    Tensor lse = empty({B}, DType::F64, Device::CUDA), rows = empty({B}, DType::F64, Device::CUDA);
    dispatch_float(logits.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (kHaveCuda)
        cross_entropy_forward_cuda<T>(y.data<T>(), lse.data<double>(), rows.data<double>(), logits.data<T>(),
                                      target.data<int64_t>(), B, C, label_smoothing);
    });
    if (auto n = record<CrossEntropyFn>(y, {logits})) {
      n->logits = logits;
      n->target = target;
      n->lse_cuda = lse;
      n->eps = label_smoothing;
    }
    return y;
  }
  Tensor y = empty({}, logits.dtype());
  std::vector<double> lse(B), rows(B);
  dispatch_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data<T>();
    const double eps = label_smoothing;
#pragma omp parallel for if (B * C > kParallelGrain)
    for (int64_t b = 0; b < B; ++b) {
      const T* xr = x + b * C;
      lse[b] = row_lse(xr, C);
      const double mean_x = eps > 0 ? detail::lane_sum(C, [&](int64_t c) { return xr[c]; }) / (double)C : 0.0;
      rows[b] = math::ce_row_loss<double>(lse[b], (double)xr[t[b]], mean_x, eps);
    }
    y.data<T>()[0] = (T)ordered_mean(rows);
  });
  if (auto n = record<CrossEntropyFn>(y, {logits})) {
    n->logits = logits;
    n->target = target;
    n->lse = std::move(lse);
    n->eps = label_smoothing;
  }
  return y;
}

Tensor cross_entropy_soft(const Tensor& logits, const Tensor& target_probs) {
  const char* op = "cross_entropy_soft";
  check_logits(op, logits);
  check_same_device(op, logits, target_probs);
  PW_CHECK(target_probs.shape() == logits.shape(), op, ": target_probs ", target_probs.str(),
           " must have the logits' shape ", logits.str(), " (one probability per class)");
  check_same_dtype(op, logits, target_probs);
  const int64_t B = logits.size(0), C = logits.size(1);
  if (logits.device() == Device::CUDA) {
    Tensor y = empty({}, logits.dtype(), Device::CUDA);
    Tensor lse = empty({B}, DType::F64, Device::CUDA), sum_q = empty({B}, DType::F64, Device::CUDA),
           rows = empty({B}, DType::F64, Device::CUDA);
    dispatch_float(logits.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (kHaveCuda)
        cross_entropy_soft_forward_cuda<T>(y.data<T>(), lse.data<double>(), sum_q.data<double>(), rows.data<double>(),
                                           logits.data<T>(), target_probs.data<T>(), B, C);
    });
    if (auto n = record<CrossEntropySoftFn>(y, {logits, target_probs})) {
      n->logits = logits;
      n->q = target_probs;
      n->lse_cuda = lse;
      n->sum_q_cuda = sum_q;
    }
    return y;
  }
  Tensor y = empty({}, logits.dtype());
  std::vector<double> lse(B), sum_q(B), rows(B);
  dispatch_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data<T>();
    const T* q = target_probs.data<T>();
#pragma omp parallel for if (B * C > kParallelGrain)
    for (int64_t b = 0; b < B; ++b) {
      const T* xr = x + b * C;
      const T* qr = q + b * C;
      lse[b] = row_lse(xr, C);
      sum_q[b] = detail::lane_sum(C, [&](int64_t c) { return qr[c]; });
      const double l = lse[b];
      // sum_c q_c (lse - x_c), not S lse - sum_c q_c x_c: no cancellation between large terms.
      rows[b] = detail::lane_sum(C, [&](int64_t c) { return (double)qr[c] * (l - (double)xr[c]); });
    }
    y.data<T>()[0] = (T)ordered_mean(rows);
  });
  if (auto n = record<CrossEntropySoftFn>(y, {logits, target_probs})) {
    n->logits = logits;
    n->q = target_probs;
    n->lse = std::move(lse);
    n->sum_q = std::move(sum_q);
  }
  return y;
}

}  // namespace pw
