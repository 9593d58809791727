// CUDA kernels of matmul, linear and linear_gelu: tensor-level launchers on
// cuBLAS / cuBLASLt (kernels/gemm/gemm_cuda.h), the twins of matmul_cpu.cpp.
// Batches that line up (or one side repeated) are one strided-batched call; a
// general broadcast runs one GEMM per output slice. Gradients keep the GradBuf
// contract: GEMM beta = accumulate ? 1 : 0. Gradients of a broadcast operand sum
// slice by slice in output order on the one stream: deterministic.
#include "autograd/dispatch.h"
#include "kernels/gemm/gemm_cuda.h"
#include "kernels/matmul/matmul_kernels.h"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

namespace {

// a has every output slice and b's slices repeat in order over a's leading dims
// (a (B,NH,M,K) @ b (NH,K,N): Transformer-XL's projected relative table).
bool b_repeats_over_leading_dims(const MatmulPlan& p) {
  if (p.a_bn != p.out_bn || p.out_bn % p.b_bn != 0) return false;
  for (int64_t i = 0; i < p.out_bn; ++i)
    if (p.ia[i] != i || p.ib[i] != i % p.b_bn) return false;
  return true;
}

// y (out_bn,M,N) = a (a_bn,M,K) @ b (b_bn,K,N), slices paired by the plan.
template <class T>
void matmul_forward_gemms(T* y, const T* a, const T* b, const MatmulPlan& p) {
  const int64_t M = p.M, K = p.K, N = p.N;
  if (p.b_bn == 1) {
    gemm_cuda<T>(false, false, 1, p.out_bn * M, N, K, T(1), a, K, 0, b, N, 0, T(0), y, N, 0);
  } else if (p.b_bn == p.out_bn && (p.a_bn == p.out_bn || p.a_bn == 1)) {
    gemm_cuda<T>(false, false, p.out_bn, M, N, K, T(1), a, K, p.a_bn == 1 ? 0 : M * K, b, N, K * N, T(0), y, N,
                 M * N);
  } else if (b_repeats_over_leading_dims(p)) {  // a (G,b_bn,M,K) @ b (b_bn,K,N): G calls of b_bn
    for (int64_t g = 0; g < p.out_bn / p.b_bn; ++g)
      gemm_cuda<T>(false, false, p.b_bn, M, N, K, T(1), a + g * p.b_bn * M * K, K, M * K, b, N, K * N, T(0),
                   y + g * p.b_bn * M * N, N, M * N);
  } else {
    for (int64_t i = 0; i < p.out_bn; ++i)
      gemm_cuda<T>(false, false, 1, M, N, K, T(1), a + p.ia[i] * M * K, K, 0, b + p.ib[i] * K * N, N, 0, T(0),
                   y + i * M * N, N, 0);
  }
}

// Forward was y = a @ b:  da (+)= dy @ b^T,  db (+)= a^T @ dy.   da: (a_bn,M,K)  db: (b_bn,K,N)  dy: (out_bn,M,N)
template <class T>
void matmul_backward_gemms(GradBuf da, GradBuf db, const T* dy, const T* a, const T* b, const MatmulPlan& p) {
  const int64_t M = p.M, K = p.K, N = p.N;
  const T beta_a = da.accumulate ? T(1) : T(0), beta_b = db.accumulate ? T(1) : T(0);
  if (p.b_bn == 1) {  // a's batch folded into M, as in the forward
    if (da) gemm_cuda<T>(false, true, 1, p.out_bn * M, K, N, T(1), dy, N, 0, b, N, 0, beta_a, da.data<T>(), K, 0);
    if (db) gemm_cuda<T>(true, false, 1, K, N, p.out_bn * M, T(1), a, K, 0, dy, N, 0, beta_b, db.data<T>(), N, 0);
    return;
  }
  const int64_t sb = p.b_bn == 1 ? 0 : K * N, sa = p.a_bn == 1 ? 0 : M * K;
  if (da) {
    if (p.a_bn == p.out_bn && (p.b_bn == p.out_bn || p.b_bn == 1)) {
      gemm_cuda<T>(false, true, p.out_bn, M, K, N, T(1), dy, N, M * N, b, N, sb, beta_a, da.data<T>(), K, M * K);
    } else {
      // Slices of a repeat: sum them one GEMM per output slice (beta 1). A fresh da is
      // zeroed and summed into directly; an accumulating one gets the sum from a zeroed
      // buffer added once (exactly this backward's contribution).
      Tensor sum;
      T* out = da.data<T>();
      if (da.accumulate) {
        sum = zeros({p.a_bn * M * K}, dtype_of<T>::value, Device::CUDA);
        out = sum.data<T>();
      } else {
        da.zero_if_fresh();
      }
      for (int64_t i = 0; i < p.out_bn; ++i)
        gemm_cuda<T>(false, true, 1, M, K, N, T(1), dy + i * M * N, N, 0, b + p.ib[i] * K * N, N, 0, T(1),
                     out + p.ia[i] * M * K, K, 0);
      if (sum.defined()) axpy_cuda<T>(da.data<T>(), sum.data<T>(), 1.0, p.a_bn * M * K);
    }
  }
  if (db) {
    if (p.b_bn == p.out_bn && (p.a_bn == p.out_bn || p.a_bn == 1)) {
      gemm_cuda<T>(true, false, p.out_bn, K, N, M, T(1), a, K, sa, dy, N, M * N, beta_b, db.data<T>(), N, K * N);
    } else {
      Tensor sum;
      T* out = db.data<T>();
      if (db.accumulate) {
        sum = zeros({p.b_bn * K * N}, dtype_of<T>::value, Device::CUDA);
        out = sum.data<T>();
      } else {
        db.zero_if_fresh();
      }
      for (int64_t i = 0; i < p.out_bn; ++i)
        gemm_cuda<T>(true, false, 1, K, N, M, T(1), a + p.ia[i] * M * K, K, 0, dy + i * M * N, N, 0, T(1),
                     out + p.ib[i] * K * N, N, 0);
      if (sum.defined()) axpy_cuda<T>(db.data<T>(), sum.data<T>(), 1.0, p.b_bn * K * N);
    }
  }
}

// Forward was y = x @ w^T + bias:  dx (+)= dy @ w,  dw (+)= dy^T @ x,  dbias (+)= column sums of dy.
// x: (R,Din)  w: (Dout,Din)  dy: (R,Dout)
template <class T>
void linear_backward_gemms(GradBuf dx, GradBuf dw, GradBuf db, const T* dy, const T* x, const T* w, int64_t R,
                           int64_t Din, int64_t Dout) {
  if (dx)
    gemm_cuda<T>(false, false, 1, R, Din, Dout, T(1), dy, Dout, 0, w, Din, 0, dx.accumulate ? T(1) : T(0),
                 dx.data<T>(), Din, 0);
  if (dw)
    gemm_cuda<T>(true, false, 1, Dout, Din, R, T(1), dy, Dout, 0, x, Din, 0, dw.accumulate ? T(1) : T(0),
                 dw.data<T>(), Din, 0);
  if (db) column_sum_cuda(db.data<T>(), dy, R, Dout, /*overwrite=*/!db.accumulate);
}

}  // namespace

void matmul_forward_cuda(Tensor& y, const Tensor& a, const Tensor& b, const MatmulPlan& p) {
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    matmul_forward_gemms(y.data<T>(), a.data<T>(), b.data<T>(), p);
  });
}
void matmul_backward_cuda(GradBuf da, GradBuf db, const Tensor& dy, const Tensor& a, const Tensor& b,
                          const MatmulPlan& p) {
  if (p.out_bn * p.M * p.N == 0) {  // no products: the gradients are zero
    da.zero_if_fresh();
    db.zero_if_fresh();
    return;
  }
  dispatch_float(dy.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    matmul_backward_gemms<T>(da, db, dy.data<T>(), a.data<T>(), b.data<T>(), p);
  });
}

void linear_forward_cuda(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R, int64_t Din,
                         int64_t Dout) {
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    const T* bias = b.defined() ? b.data<T>() : nullptr;
    if (bias) bias_rows_cuda(y.data<T>(), bias, R, Dout);
    gemm_cuda<T>(false, true, 1, R, Dout, Din, T(1), x.data<T>(), Din, 0, w.data<T>(), Din, 0, bias ? T(1) : T(0),
                 y.data<T>(), Dout, 0);
  });
}
void linear_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                          int64_t R, int64_t Din, int64_t Dout) {
  dispatch_float(dy.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    linear_backward_gemms<T>(dx, dw, db, dy.data<T>(), x.data<T>(), w.data<T>(), R, Din, Dout);
  });
}

void linear_gelu_forward_cuda(Tensor& y, Tensor& pre, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R,
                              int64_t Din, int64_t Dout) {
  dispatch_float(x.dtype(), "linear_gelu", [&](auto tag) {
    using T = decltype(tag);
    linear_gelu_gemm_cuda(y.data<T>(), pre.data<T>(), x.data<T>(), w.data<T>(), b.data<T>(), R, Din, Dout);
  });
}
void linear_gelu_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& pre,
                               const Tensor& x, const Tensor& w, int64_t R, int64_t Din, int64_t Dout) {
  Tensor dpre = empty_like(pre);  // (R,Dout) scratch
  dispatch_float(dy.dtype(), "linear_gelu", [&](auto tag) {
    using T = decltype(tag);
    gelu_tanh_backward_cuda(dpre.data<T>(), pre.data<T>(), dy.data<T>(), R * Dout);
    linear_backward_gemms<T>(dx, dw, db, dpre.data<T>(), x.data<T>(), w.data<T>(), R, Din, Dout);
  });
}

}  // namespace pw
