#include <algorithm>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/activation/activation_math.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_cuda.h"
#include "kernels/matmul/matmul.h"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

namespace {

// How the batch of a @ b maps onto the batches of its operands.
struct MatmulPlan {
  int64_t M = 0, K = 0, N = 0;
  Shape out_batch;                 // broadcast of a's and b's batch dims
  int64_t a_bn = 1, b_bn = 1;      // number of (M,K) slices in a, (K,N) slices in b
  int64_t out_bn = 1;              // number of (M,N) slices in y
  std::vector<int64_t> ia, ib;     // (out_bn): the a and b slice under each y slice
};

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b) {
  MatmulPlan p;
  p.M = a.size(-2);
  p.K = a.size(-1);
  p.N = b.size(-1);
  PW_CHECK(b.size(-2) == p.K, "matmul: inner dimensions differ, a ", a.str(), " @ b ", b.str(),
           "; a's last dim must equal b's second-to-last");
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  size_t nd = std::max(ab.size(), bb.size());
  ab.insert(ab.begin(), nd - ab.size(), 1);
  bb.insert(bb.begin(), nd - bb.size(), 1);
  p.out_batch.resize(nd);
  for (size_t d = 0; d < nd; ++d) {
    PW_CHECK(ab[d] == bb[d] || ab[d] == 1 || bb[d] == 1, "matmul: batch dims of a ", a.str(), " and b ", b.str(),
             " do not broadcast (", ab[d], " vs ", bb[d], " at batch dim ", d, ")");
    p.out_batch[d] = ab[d] == 1 ? bb[d] : ab[d];
  }
  p.a_bn = numel_of(ab);
  p.b_bn = numel_of(bb);
  p.out_bn = numel_of(p.out_batch);
  // Slice strides of a and b per batch dim; 0 where the dim broadcasts.
  std::vector<int64_t> sa(nd, 0), sb(nd, 0);
  for (int64_t d = (int64_t)nd - 1, ra = 1, rb = 1; d >= 0; --d) {
    if (ab[d] != 1) sa[d] = ra;
    if (bb[d] != 1) sb[d] = rb;
    ra *= ab[d];
    rb *= bb[d];
  }
  // Odometer over the output batch index.
  p.ia.resize(p.out_bn);
  p.ib.resize(p.out_bn);
  std::vector<int64_t> idx(nd, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t i = 0; i < p.out_bn; ++i) {
    p.ia[i] = oa;
    p.ib[i] = ob;
    for (int64_t d = (int64_t)nd - 1; d >= 0; --d) {
      oa += sa[d];
      ob += sb[d];
      if (++idx[d] < p.out_batch[d]) break;
      oa -= sa[d] * idx[d];
      ob -= sb[d] * idx[d];
      idx[d] = 0;
    }
  }
  return p;
}

// dst slice s (dst + s*dst_stride) += op(A[i]) @ op(B[i]) for every i with slot[i] == s.
// When several i share one slot (a broadcast operand's gradient), the GEMMs run in
// rounds: round r does every slot's r-th contribution as one batched call, so no two
// GEMMs of a call write the same slice and each slice sums in i order on any thread count.
// Several rounds sum into a zeroed buffer first, which is then added to dst once: the
// backward adds exactly its own contribution (see Node in autograd/function.h).
template <class T>
void accumulate_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const std::vector<const T*>& A,
                        int64_t lda, const std::vector<const T*>& B, int64_t ldb, const std::vector<int64_t>& slot,
                        int64_t n_slots, T* dst, int64_t dst_stride, int64_t ldc) {
  std::vector<int64_t> seen(n_slots, 0), round(slot.size());
  int64_t n_rounds = 0;
  for (size_t i = 0; i < slot.size(); ++i) {
    round[i] = seen[slot[i]]++;
    n_rounds = std::max(n_rounds, round[i] + 1);
  }
  std::vector<T> sum;  // (n_slots * dst_stride), only when slots repeat
  T* out = dst;
  if (n_rounds > 1) {
    sum.assign(n_slots * dst_stride, T(0));
    out = sum.data();
  }
  std::vector<const T*> a, b;
  std::vector<T*> c;
  for (int64_t r = 0; r < n_rounds; ++r) {
    a.clear();
    b.clear();
    c.clear();
    for (size_t i = 0; i < slot.size(); ++i) {
      if (round[i] != r) continue;
      a.push_back(A[i]);
      b.push_back(B[i]);
      c.push_back(out + slot[i] * dst_stride);
    }
    gemm_batched(ta, tb, (int64_t)c.size(), M, N, K, T(1), a.data(), lda, b.data(), ldb, T(1), c.data(), ldc);
  }
  if (n_rounds > 1) {
    const int64_t n = n_slots * dst_stride;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dst[i] += sum[i];
  }
}

// y (out_bn,M,N) = a (a_bn,M,K) @ b (b_bn,K,N), slices paired by the plan.
template <class T>
void matmul_forward_cpu(T* y, const T* a, const T* b, const MatmulPlan& p) {
  const int64_t M = p.M, K = p.K, N = p.N;
  if (p.b_bn == 1) {  // one b for all: fold a's batch into M, one big GEMM
    gemm(false, false, p.out_bn * M, N, K, T(1), a, K, b, N, T(0), y, N);
    return;
  }
  std::vector<const T*> A(p.out_bn), B(p.out_bn);
  std::vector<T*> C(p.out_bn);
  for (int64_t i = 0; i < p.out_bn; ++i) {
    A[i] = a + p.ia[i] * M * K;
    B[i] = b + p.ib[i] * K * N;
    C[i] = y + i * M * N;
  }
  gemm_batched(false, false, p.out_bn, M, N, K, T(1), A.data(), K, B.data(), N, T(0), C.data(), N);
}

// Forward was y = a @ b:  da += dy @ b^T,  db += a^T @ dy, each summed over the output
// slices that a broadcast operand slice fed.   da: (a_bn,M,K)  db: (b_bn,K,N)  dy: (out_bn,M,N)
template <class T>
void matmul_backward_cpu(T* da, T* db, const T* dy, const T* a, const T* b, const MatmulPlan& p) {
  const int64_t M = p.M, K = p.K, N = p.N;
  if (p.b_bn == 1) {  // a's batch folded into M, as in the forward
    if (da) gemm(false, true, p.out_bn * M, K, N, T(1), dy, N, b, N, T(1), da, K);
    if (db) gemm(true, false, K, N, p.out_bn * M, T(1), a, K, dy, N, T(1), db, N);
    return;
  }
  std::vector<const T*> A(p.out_bn), B(p.out_bn), DY(p.out_bn);
  for (int64_t i = 0; i < p.out_bn; ++i) {
    A[i] = a + p.ia[i] * M * K;
    B[i] = b + p.ib[i] * K * N;
    DY[i] = dy + i * M * N;
  }
  if (da) accumulate_batched(false, true, M, K, N, DY, N, B, N, p.ia, p.a_bn, da, M * K, K);
  if (db) accumulate_batched(true, false, K, N, M, A, K, DY, N, p.ib, p.b_bn, db, K * N, N);
}

// CUDA twins of matmul_forward_cpu / matmul_backward_cpu on cuBLAS. Batches that
// line up (or one side repeated) are one strided-batched call; a general broadcast
// runs one GEMM per output slice. Gradients of a broadcast operand accumulate
// (beta = 1) slice by slice in output order on the one stream: deterministic.
template <class T>
void matmul_forward_cuda(T* y, const T* a, const T* b, const MatmulPlan& p) {
  if constexpr (kHaveCuda) {
    const int64_t M = p.M, K = p.K, N = p.N;
    if (p.b_bn == 1) {
      gemm_cuda<T>(false, false, 1, p.out_bn * M, N, K, T(1), a, K, 0, b, N, 0, T(0), y, N, 0);
    } else if (p.a_bn == p.out_bn || p.a_bn == 1) {  // b_bn == out_bn here
      gemm_cuda<T>(false, false, p.out_bn, M, N, K, T(1), a, K, p.a_bn == 1 ? 0 : M * K, b, N, K * N, T(0), y, N,
                   M * N);
    } else {
      for (int64_t i = 0; i < p.out_bn; ++i)
        gemm_cuda<T>(false, false, 1, M, N, K, T(1), a + p.ia[i] * M * K, K, 0, b + p.ib[i] * K * N, N, 0, T(0),
                     y + i * M * N, N, 0);
    }
  }
}
// Forward was y = a @ b:  da += dy @ b^T,  db += a^T @ dy.   da: (a_bn,M,K)  db: (b_bn,K,N)  dy: (out_bn,M,N)
template <class T>
void matmul_backward_cuda(T* da, T* db, const T* dy, const T* a, const T* b, const MatmulPlan& p) {
  if constexpr (kHaveCuda) {
    const int64_t M = p.M, K = p.K, N = p.N;
    if (p.b_bn == 1) {  // a's batch folded into M, as in the forward
      if (da) gemm_cuda<T>(false, true, 1, p.out_bn * M, K, N, T(1), dy, N, 0, b, N, 0, T(1), da, K, 0);
      if (db) gemm_cuda<T>(true, false, 1, K, N, p.out_bn * M, T(1), a, K, 0, dy, N, 0, T(1), db, N, 0);
      return;
    }
    const int64_t sb = p.b_bn == 1 ? 0 : K * N, sa = p.a_bn == 1 ? 0 : M * K;
    if (da) {
      if (p.a_bn == p.out_bn && (p.b_bn == p.out_bn || p.b_bn == 1))
        gemm_cuda<T>(false, true, p.out_bn, M, K, N, T(1), dy, N, M * N, b, N, sb, T(1), da, K, M * K);
      else {  // slices of a repeat: sum them in a zeroed buffer, then add it once (exactly our contribution)
        Tensor sum = zeros({p.a_bn * M * K}, dtype_of<T>::value, Device::CUDA);
        for (int64_t i = 0; i < p.out_bn; ++i)
          gemm_cuda<T>(false, true, 1, M, K, N, T(1), dy + i * M * N, N, 0, b + p.ib[i] * K * N, N, 0, T(1),
                       sum.data<T>() + p.ia[i] * M * K, K, 0);
        axpy_cuda<T>(da, sum.data<T>(), 1.0, p.a_bn * M * K);
      }
    }
    if (db) {
      if (p.b_bn == p.out_bn && (p.a_bn == p.out_bn || p.a_bn == 1))
        gemm_cuda<T>(true, false, p.out_bn, K, N, M, T(1), a, K, sa, dy, N, M * N, T(1), db, N, K * N);
      else {
        Tensor sum = zeros({p.b_bn * K * N}, dtype_of<T>::value, Device::CUDA);
        for (int64_t i = 0; i < p.out_bn; ++i)
          gemm_cuda<T>(true, false, 1, K, N, M, T(1), a + p.ia[i] * M * K, K, 0, dy + i * M * N, N, 0, T(1),
                       sum.data<T>() + p.ib[i] * K * N, N, 0);
        axpy_cuda<T>(db, sum.data<T>(), 1.0, p.b_bn * K * N);
      }
    }
  }
}

// y = a @ b.   a: (...,M,K)  b: (...,K,N)  y: (out_batch...,M,N)
struct MatmulFn final : Node {
  Tensor a, b;
  MatmulPlan plan;
  const char* name() const override { return "matmul"; }
  void backward(const Tensor& dy, Grads& g) override {
    dispatch_float(dy.dtype(), "matmul", [&](auto tag) {
      using T = decltype(tag);
      T* da = g.needs(0) ? g[0].data<T>() : nullptr;
      T* db = g.needs(1) ? g[1].data<T>() : nullptr;
      if (dy.device() == Device::CUDA) return matmul_backward_cuda(da, db, dy.data<T>(), a.data<T>(), b.data<T>(), plan);
      matmul_backward_cpu(da, db, dy.data<T>(), a.data<T>(), b.data<T>(), plan);
    });
  }
  void release() override {
    a = Tensor();
    b = Tensor();
  }
};

// db (C) += sum over rows of dy (R,C) (overwrite: db = ...). Tasks are (chunk of kRB
// rows, block of kCB columns), fixed by the shape; each sums its rows in order, and the
// chunk partials are added in chunk order, so the result does not depend on the
// thread count while a bias of 64 columns still spreads over every thread.
// NOTE: float sums accumulate in double; R is the batch*tokens count, often thousands.
template <class T>
void column_sum_add(T* db, const T* dy, int64_t R, int64_t C, bool overwrite = false) {
  constexpr int64_t kCB = 64, kRB = 512;
  const int64_t nb = (C + kCB - 1) / kCB, nr = std::max<int64_t>(1, (R + kRB - 1) / kRB);
  std::vector<double> part(nr * C, 0.0);  // (nr, C): the sum of chunk k's rows
#pragma omp parallel for if (R * C > kParallelGrain)
  for (int64_t t = 0; t < nr * nb; ++t) {
    const int64_t k = t / nb, c0 = t % nb * kCB, c1 = std::min(C, c0 + kCB);
    double acc[kCB] = {0};
    for (int64_t r = k * kRB; r < std::min(R, (k + 1) * kRB); ++r) {
      const T* row = dy + r * C;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    std::copy(acc, acc + (c1 - c0), part.begin() + k * C + c0);
  }
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t k = 0; k < nr; ++k) s += part[k * C + c];
    db[c] = (overwrite ? T(0) : db[c]) + (T)s;
  }
}

// y (R,Dout) = x (R,Din) @ w^T + bias; bias (Dout) may be null.
template <class T>
void linear_forward_cpu(T* y, const T* x, const T* w, const T* bias, int64_t R, int64_t Din, int64_t Dout) {
  if (bias) {  // y starts as the bias rows, the GEMM adds onto it (beta = 1)
#pragma omp parallel for if (R * Dout > kParallelGrain)
    for (int64_t r = 0; r < R; ++r) std::copy(bias, bias + Dout, y + r * Dout);
  }
  gemm(false, true, R, Dout, Din, T(1), x, Din, w, Din, bias ? T(1) : T(0), y, Dout);
}

// Forward was y = x @ w^T + bias:  dx += dy @ w,  dw += dy^T @ x,  dbias += column sums of dy.
// fresh[i]: that gradient's buffer is new and uninitialised, so it is written, not added to.
template <class T>
void linear_backward_cpu(T* dx, T* dw, T* dbias, const T* dy, const T* x, const T* w, int64_t R, int64_t Din,
                         int64_t Dout, const bool fresh[3]) {
  if (dx) gemm(false, false, R, Din, Dout, T(1), dy, Dout, w, Din, fresh[0] ? T(0) : T(1), dx, Din);
  if (dw) gemm(true, false, Dout, Din, R, T(1), dy, Dout, x, Din, fresh[1] ? T(0) : T(1), dw, Din);
  if (dbias) column_sum_add(dbias, dy, R, Dout, fresh[2]);
}

// CUDA twins of linear_forward_cpu / linear_backward_cpu (same arguments).
template <class T>
void linear_forward_cuda(T* y, const T* x, const T* w, const T* bias, int64_t R, int64_t Din, int64_t Dout) {
  if constexpr (kHaveCuda) {
    if (bias) bias_rows_cuda(y, bias, R, Dout);
    gemm_cuda<T>(false, true, 1, R, Dout, Din, T(1), x, Din, 0, w, Din, 0, bias ? T(1) : T(0), y, Dout, 0);
  }
}
template <class T>
void linear_backward_cuda(T* dx, T* dw, T* dbias, const T* dy, const T* x, const T* w, int64_t R, int64_t Din,
                          int64_t Dout, const bool fresh[3]) {
  if constexpr (kHaveCuda) {
    if (dx) gemm_cuda<T>(false, false, 1, R, Din, Dout, T(1), dy, Dout, 0, w, Din, 0, fresh[0] ? T(0) : T(1), dx, Din, 0);
    if (dw) gemm_cuda<T>(true, false, 1, Dout, Din, R, T(1), dy, Dout, 0, x, Din, 0, fresh[1] ? T(0) : T(1), dw, Din, 0);
    if (dbias) column_sum_cuda(dbias, dy, R, Dout, fresh[2]);
  }
}

// y = x @ w^T + b.   x: (R,Din) viewed from (...,Din)  w: (Dout,Din)  b: (Dout)  y: (R,Dout)
struct LinearFn final : Node {
  Tensor x, w;
  int64_t R = 0, Din = 0, Dout = 0;
  const char* name() const override { return "linear"; }
  void backward(const Tensor& dy, Grads& g) override {
    bool fresh[3] = {false, false, false};
    Tensor* d[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < 3; ++i)
      if (g.needs(i)) d[i] = &g.out(i, fresh[i]);
    dispatch_float(dy.dtype(), "linear", [&](auto tag) {
      using T = decltype(tag);
      auto ptr = [&](int i) { return d[i] ? d[i]->data<T>() : nullptr; };
      if (dy.device() == Device::CUDA)
        return linear_backward_cuda(ptr(0), ptr(1), ptr(2), dy.data<T>(), x.data<T>(), w.data<T>(), R, Din, Dout,
                                    fresh);
      linear_backward_cpu(ptr(0), ptr(1), ptr(2), dy.data<T>(), x.data<T>(), w.data<T>(), R, Din, Dout, fresh);
    });
  }
  void release() override {
    x = Tensor();
    w = Tensor();
  }
};

// y = gelu_tanh(pre), pre = x @ w^T + b.   x: (R,Din)  w: (Dout,Din)  b: (Dout)  pre, y: (R,Dout)
// Saves pre (an intermediate, not the output, so no cycle).
struct LinearGeluFn final : Node {
  Tensor x, w, pre;
  int64_t R = 0, Din = 0, Dout = 0;
  const char* name() const override { return "linear_gelu"; }
  // Forward was y = gelu_tanh(pre): dpre = gelu_tanh'(pre) * dy, then linear's backward on dpre.
  void backward(const Tensor& dy, Grads& g) override {
    bool fresh[3] = {false, false, false};
    Tensor* d[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < 3; ++i)
      if (g.needs(i)) d[i] = &g.out(i, fresh[i]);
    Tensor dpre = empty_like(pre);
    dispatch_float(dy.dtype(), "linear_gelu", [&](auto tag) {
      using T = decltype(tag);
      auto ptr = [&](int i) { return d[i] ? d[i]->data<T>() : nullptr; };
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) {
          gelu_tanh_backward_cuda(dpre.data<T>(), pre.data<T>(), dy.data<T>(), R * Dout);
          linear_backward_cuda(ptr(0), ptr(1), ptr(2), dpre.data<T>(), x.data<T>(), w.data<T>(), R, Din, Dout,
                               fresh);
        }
        return;
      }
      T* dp = dpre.data<T>();
      const T *pp = pre.data<T>(), *dyp = dy.data<T>();
      const int64_t n = R * Dout;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) dp[i] = math::gelu_tanh_bwd(pp[i], dyp[i]);
      linear_backward_cpu(ptr(0), ptr(1), ptr(2), (const T*)dp, x.data<T>(), w.data<T>(), R, Din, Dout, fresh);
    });
  }
  void release() override {
    x = Tensor();
    w = Tensor();
    pre = Tensor();
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device("matmul", a, b);
  PW_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got a ", a.str(),
           " and b ", b.str());
  check_same_dtype("matmul", a, b);
  if (a.dim() == 1 || b.dim() == 1) {  // vectors become (1,K) / (K,1); that dim leaves the result
    int64_t Kb = b.dim() == 1 ? b.size(0) : b.size(-2);
    PW_CHECK(a.size(-1) == Kb, "matmul: inner dimensions differ, a ", a.str(), " @ b ", b.str(),
             "; a's last dim must equal b's ", b.dim() == 1 ? "only" : "second-to-last", " dim");
    Tensor a2 = a.dim() == 1 ? a.reshape({1, a.size(0)}) : a;
    Tensor b2 = b.dim() == 1 ? b.reshape({b.size(0), 1}) : b;
    Tensor y = matmul(a2, b2);
    Shape s = y.shape();
    if (b.dim() == 1) s.pop_back();
    if (a.dim() == 1) s.erase(s.end() - (b.dim() == 1 ? 1 : 2));
    return y.reshape(s);
  }
  MatmulPlan p = plan_matmul(a, b);
  Shape ys = p.out_batch;
  ys.push_back(p.M);
  ys.push_back(p.N);
  Tensor y = empty(ys, a.dtype(), a.device());
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    if (a.device() == Device::CUDA) return matmul_forward_cuda(y.data<T>(), a.data<T>(), b.data<T>(), p);
    matmul_forward_cpu(y.data<T>(), a.data<T>(), b.data<T>(), p);
  });
  if (auto n = record<MatmulFn>(y, {a, b})) {
    n->a = a;
    n->b = b;
    n->plan = std::move(p);
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_same_device("linear", x, w);
  PW_CHECK(w.dim() == 2, "linear: weight must be (Dout,Din), got ", w.str(), " (x is ", x.str(), ")");
  PW_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: x ", x.str(), " must end in Din = ", w.size(1),
           " to match weight ", w.str());
  check_same_dtype("linear", x, w);
  const int64_t Din = w.size(1), Dout = w.size(0);
  if (b.defined()) {
    check_same_device("linear", x, b);
    check_same_dtype("linear", x, b);
    PW_CHECK(b.dim() == 1 && b.size(0) == Dout, "linear: bias must be (Dout) = (", Dout, "), got ", b.str(),
             " for weight ", w.str());
  }
  Shape ys = x.shape();
  ys.back() = Dout;
  int64_t R = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor y = empty(ys, x.dtype(), x.device());
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA)
      return linear_forward_cuda(y.data<T>(), x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, R, Din,
                                 Dout);
    linear_forward_cpu(y.data<T>(), x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, R, Din, Dout);
  });
  if (auto n = record<LinearFn>(y, {x, w, b})) {
    n->x = x;
    n->w = w;
    n->R = R;
    n->Din = Din;
    n->Dout = Dout;
  }
  return y;
}

}  // namespace pw

namespace pw {

Tensor linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_same_device("linear_gelu", x, w);
  PW_CHECK(w.dim() == 2, "linear_gelu: weight must be (Dout,Din), got ", w.str(), " (x is ", x.str(), ")");
  PW_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear_gelu: x ", x.str(), " must end in Din = ", w.size(1),
           " to match weight ", w.str());
  check_same_dtype("linear_gelu", x, w);
  const int64_t Din = w.size(1), Dout = w.size(0);
  PW_CHECK(b.defined(), "linear_gelu: needs a bias (Dout) = (", Dout, "); use gelu_tanh(linear(x, w)) without one");
  check_same_device("linear_gelu", x, b);
  check_same_dtype("linear_gelu", x, b);
  PW_CHECK(b.dim() == 1 && b.size(0) == Dout, "linear_gelu: bias must be (Dout) = (", Dout, "), got ", b.str(),
           " for weight ", w.str());
  Shape ys = x.shape();
  ys.back() = Dout;
  const int64_t R = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor y = empty(ys, x.dtype(), x.device()), pre = empty(ys, x.dtype(), x.device());
  dispatch_float(x.dtype(), "linear_gelu", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda)
        linear_gelu_forward_cuda(y.data<T>(), pre.data<T>(), x.data<T>(), w.data<T>(), b.data<T>(), R, Din, Dout);
      return;
    }
    linear_forward_cpu(pre.data<T>(), x.data<T>(), w.data<T>(), b.data<T>(), R, Din, Dout);
    T* yp = y.data<T>();
    const T* pp = pre.data<T>();
    const int64_t n = R * Dout;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) yp[i] = math::gelu_tanh_fwd(pp[i]);
  });
  if (auto n = record<LinearGeluFn>(y, {x, w, b})) {
    n->x = x;
    n->w = w;
    n->pre = pre;
    n->R = R;
    n->Din = Din;
    n->Dout = Dout;
  }
  return y;
}

}  // namespace pw
