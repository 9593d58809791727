// CPU kernels of matmul, linear and linear_gelu on the oneDNN / blocked GEMM
// (kernels/gemm/gemm.h). Backward kernels keep the GradBuf contract: a fresh
// gradient is written by the GEMM (beta = 0), an accumulating one added (beta = 1).
#include <algorithm>
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/activation/activation_math.h"
#include "kernels/gemm/gemm.h"
#include "kernels/matmul/matmul_kernels.h"

namespace pw {

namespace {

// dst slice s (dst + s*dst_stride) (+)= sum of op(A[i]) @ op(B[i]) over every i with slot[i] == s.
// When several i share one slot (a broadcast operand's gradient), the GEMMs run in
// rounds: round r does every slot's r-th contribution as one batched call, so no two
// GEMMs of a call write the same slice and each slice sums in i order on any thread count.
// Several rounds sum into a zeroed buffer first, which is then added to dst once: the
// backward adds exactly its own contribution (see Node in autograd/function.h).
// accumulate == false: dst is fresh and uninitialised and is written instead (GradBuf).
template <class T>
void accumulate_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const std::vector<const T*>& A,
                        int64_t lda, const std::vector<const T*>& B, int64_t ldb, const std::vector<int64_t>& slot,
                        int64_t n_slots, T* dst, int64_t dst_stride, int64_t ldc, bool accumulate) {
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
    // One round into dst: write a fresh buffer (beta 0), add otherwise. Rounds into sum add.
    const T beta = n_rounds > 1 || accumulate ? T(1) : T(0);
    gemm_batched(ta, tb, (int64_t)c.size(), M, N, K, T(1), a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  }
  if (n_rounds > 1) {
    const int64_t n = n_slots * dst_stride;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dst[i] = accumulate ? dst[i] + sum[i] : sum[i];
  }
}

// y (out_bn,M,N) = a (a_bn,M,K) @ b (b_bn,K,N), slices paired by the plan.
template <class T>
void matmul_forward_loop(T* y, const T* a, const T* b, const MatmulPlan& p) {
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

// Forward was y = a @ b:  da (+)= dy @ b^T,  db (+)= a^T @ dy, each summed over the output
// slices that a broadcast operand slice fed; acc_a / acc_b: add, else write (GradBuf).   da: (a_bn,M,K)  db: (b_bn,K,N)  dy: (out_bn,M,N)
template <class T>
void matmul_backward_loop(T* da, bool acc_a, T* db, bool acc_b, const T* dy, const T* a, const T* b,
                          const MatmulPlan& p) {
  const int64_t M = p.M, K = p.K, N = p.N;
  if (p.b_bn == 1) {  // a's batch folded into M, as in the forward
    if (da) gemm(false, true, p.out_bn * M, K, N, T(1), dy, N, b, N, acc_a ? T(1) : T(0), da, K);
    if (db) gemm(true, false, K, N, p.out_bn * M, T(1), a, K, dy, N, acc_b ? T(1) : T(0), db, N);
    return;
  }
  std::vector<const T*> A(p.out_bn), B(p.out_bn), DY(p.out_bn);
  for (int64_t i = 0; i < p.out_bn; ++i) {
    A[i] = a + p.ia[i] * M * K;
    B[i] = b + p.ib[i] * K * N;
    DY[i] = dy + i * M * N;
  }
  if (da) accumulate_batched(false, true, M, K, N, DY, N, B, N, p.ia, p.a_bn, da, M * K, K, acc_a);
  if (db) accumulate_batched(true, false, K, N, M, A, K, DY, N, p.ib, p.b_bn, db, K * N, N, acc_b);
}

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
void linear_forward_loop(T* y, const T* x, const T* w, const T* bias, int64_t R, int64_t Din, int64_t Dout) {
  if (bias) {  // y starts as the bias rows, the GEMM adds onto it (beta = 1)
#pragma omp parallel for if (R * Dout > kParallelGrain)
    for (int64_t r = 0; r < R; ++r) std::copy(bias, bias + Dout, y + r * Dout);
  }
  gemm(false, true, R, Dout, Din, T(1), x, Din, w, Din, bias ? T(1) : T(0), y, Dout);
}

// Forward was y = x @ w^T + bias:  dx (+)= dy @ w,  dw (+)= dy^T @ x,  dbias (+)= column sums of dy.
// fresh[i]: that gradient's buffer is new and uninitialised, so it is written, not added to.
template <class T>
void linear_backward_loop(T* dx, T* dw, T* dbias, const T* dy, const T* x, const T* w, int64_t R, int64_t Din,
                         int64_t Dout, const bool fresh[3]) {
  if (dx) gemm(false, false, R, Din, Dout, T(1), dy, Dout, w, Din, fresh[0] ? T(0) : T(1), dx, Din);
  if (dw) gemm(true, false, Dout, Din, R, T(1), dy, Dout, x, Din, fresh[1] ? T(0) : T(1), dw, Din);
  if (dbias) column_sum_add(dbias, dy, R, Dout, fresh[2]);
}

}  // namespace

void matmul_forward_cpu(Tensor& y, const Tensor& a, const Tensor& b, const MatmulPlan& p) {
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    matmul_forward_loop(y.data<T>(), a.data<T>(), b.data<T>(), p);
  });
}
void matmul_backward_cpu(GradBuf da, GradBuf db, const Tensor& dy, const Tensor& a, const Tensor& b,
                         const MatmulPlan& p) {
  if (p.out_bn * p.M * p.N == 0) {  // no products: the gradients are zero
    da.zero_if_fresh();
    db.zero_if_fresh();
    return;
  }
  dispatch_float(dy.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    matmul_backward_loop(da.data<T>(), da.accumulate, db.data<T>(), db.accumulate, dy.data<T>(), a.data<T>(),
                         b.data<T>(), p);
  });
}

void linear_forward_cpu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R, int64_t Din,
                        int64_t Dout) {
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    linear_forward_loop(y.data<T>(), x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, R, Din, Dout);
  });
}
void linear_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                         int64_t R, int64_t Din, int64_t Dout) {
  const bool fresh[3] = {!dx.accumulate, !dw.accumulate, !db.accumulate};
  dispatch_float(dy.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    linear_backward_loop(dx.data<T>(), dw.data<T>(), db.data<T>(), dy.data<T>(), x.data<T>(), w.data<T>(), R, Din,
                         Dout, fresh);
  });
}

void linear_gelu_forward_cpu(Tensor& y, Tensor& pre, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R,
                             int64_t Din, int64_t Dout) {
  dispatch_float(x.dtype(), "linear_gelu", [&](auto tag) {
    using T = decltype(tag);
    linear_forward_loop(pre.data<T>(), x.data<T>(), w.data<T>(), b.data<T>(), R, Din, Dout);
    T* yp = y.data<T>();
    const T* pp = pre.data<T>();
    const int64_t n = R * Dout;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) yp[i] = math::gelu_tanh_fwd(pp[i]);
  });
}
void linear_gelu_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& pre,
                              const Tensor& x, const Tensor& w, int64_t R, int64_t Din, int64_t Dout) {
  const bool fresh[3] = {!dx.accumulate, !dw.accumulate, !db.accumulate};
  Tensor dpre = empty_like(pre);
  dispatch_float(dy.dtype(), "linear_gelu", [&](auto tag) {
    using T = decltype(tag);
    T* dp = dpre.data<T>();
    const T *pp = pre.data<T>(), *dyp = dy.data<T>();
    const int64_t n = R * Dout;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) dp[i] = math::gelu_tanh_bwd(pp[i], dyp[i]);
    linear_backward_loop(dx.data<T>(), dw.data<T>(), db.data<T>(), (const T*)dp, x.data<T>(), w.data<T>(), R, Din,
                         Dout, fresh);
  });
}

}  // namespace pw
