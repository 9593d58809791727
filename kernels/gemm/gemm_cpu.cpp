#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <vector>

#include "runtime/check.h"
#include "kernels/gemm/gemm.h"

#include "autograd/profile.h"

namespace pw {

namespace {

// Argument checks shared by both dtypes: a bad leading dimension would read out of bounds.
void check_gemm_args(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc) {
  PW_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M=", M, " N=", N, " K=", K);
  int64_t min_lda = std::max<int64_t>(1, ta ? M : K), min_ldb = std::max<int64_t>(1, tb ? K : N);
  PW_CHECK(lda >= min_lda && ldb >= min_ldb && ldc >= std::max<int64_t>(1, N), "gemm: leading dimensions lda=",
           lda, " ldb=", ldb, " ldc=", ldc, " too small for M=", M, " N=", N, " K=", K,
           " trans_a=", ta, " trans_b=", tb);
}

// C (M,N) = beta * C, with beta == 0 writing zeros (so NaN/garbage in C is ignored).
template <class T>
void scale_rows(T* C, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1, T beta) {
  for (int64_t i = i0; i < i1; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) for (int64_t j = j0; j < j1; ++j) c[j] = T(0);
    else if (beta != T(1)) for (int64_t j = j0; j < j1; ++j) c[j] *= beta;
  }
}

// The float64 GEMM. C is cut into (kMB x kNB) tiles, one thread per tile, so every
// element of C is summed over k in the same order on any thread count. Per K block,
// the tile's slice of op(B) is packed into a contiguous (kb, nb) panel; the inner loop
// is then a unit-stride axpy acc[i, :] += A(i,k) * panel[k, :] that the compiler vectorises.
// The product is summed in a separate tile and combined once, C = alpha*acc + beta*C, so a
// backward that accumulates with beta = 1 adds exactly its own contribution (twice the
// same backward gives exactly twice the gradient).
constexpr int64_t kMB = 64, kNB = 256, kKB = 128;

template <class T>
void gemm_blocked(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  int64_t mt = (M + kMB - 1) / kMB, nt = (N + kNB - 1) / kNB;
  bool par = mt * nt > 1 && M * N * K > (1 << 16) && !omp_in_parallel();
#pragma omp parallel if (par)
  {
    std::vector<T> panel(std::min(K, kKB) * std::min(N, kNB));  // op(B)[k0:k0+kb, j0:j1], row stride nb
    std::vector<T> acc(std::min(M, kMB) * std::min(N, kNB));    // the tile's sum over k, row stride nb
#pragma omp for collapse(2) schedule(static)
    for (int64_t ib = 0; ib < mt; ++ib) {
      for (int64_t jb = 0; jb < nt; ++jb) {
        int64_t i0 = ib * kMB, i1 = std::min(M, i0 + kMB);
        int64_t j0 = jb * kNB, j1 = std::min(N, j0 + kNB), nb = j1 - j0;
        if (alpha == T(0) || K == 0) {
          scale_rows(C, ldc, i0, i1, j0, j1, beta);
          continue;
        }
        std::fill(acc.begin(), acc.end(), T(0));
        for (int64_t k0 = 0; k0 < K; k0 += kKB) {
          int64_t kb = std::min(K, k0 + kKB) - k0;
          for (int64_t k = 0; k < kb; ++k) {
            T* p = panel.data() + k * nb;
            if (tb) for (int64_t j = 0; j < nb; ++j) p[j] = B[(j0 + j) * ldb + k0 + k];
            else for (int64_t j = 0; j < nb; ++j) p[j] = B[(k0 + k) * ldb + j0 + j];
          }
          for (int64_t i = i0; i < i1; ++i) {
            T* s = acc.data() + (i - i0) * nb;
            for (int64_t k = 0; k < kb; ++k) {
              const T a = ta ? A[(k0 + k) * lda + i] : A[i * lda + k0 + k];
              const T* p = panel.data() + k * nb;
              for (int64_t j = 0; j < nb; ++j) s[j] += a * p[j];
            }
          }
        }
        for (int64_t i = i0; i < i1; ++i) {
          T* c = C + i * ldc + j0;
          const T* s = acc.data() + (i - i0) * nb;
          if (beta == T(0)) for (int64_t j = 0; j < nb; ++j) c[j] = alpha * s[j];
          else for (int64_t j = 0; j < nb; ++j) c[j] = alpha * s[j] + beta * c[j];
        }
      }
    }
  }
}

void sgemm_dnnl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.f) {  // nothing to multiply: C = beta * C
    scale_rows(C, ldc, 0, M, 0, N, beta);
    return;
  }
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  PW_CHECK(st == dnnl_success, "gemm: dnnl_sgemm failed (status ", (int)st, ") for M=", M, " N=", N,
           " K=", K, " lda=", lda, " ldb=", ldb, " ldc=", ldc);
}

// Spreading a batch over threads (each GEMM on one thread) beats threading each GEMM
// when the GEMMs are small: the per-call fork/join and the thin per-thread tiles cost
// more than the arithmetic. Measured with `patchwork bench gemm` on 2 AMD EPYC cores:
// 256 x (64x64x32) runs at ~150-165 GFLOP/s spread over the batch against ~80-90 as
// sequential threaded calls (which are no faster than 1 thread).
// Tiny batches (the gradient checks) stay on one thread: the fork costs more than the work.
bool spread_batch(int64_t batch, int64_t M, int64_t N, int64_t K) {
  int nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
  return nthr > 1 && batch >= nthr && M * N * K <= (int64_t(1) << 22) && batch * M * N * K > (int64_t(1) << 16);
}

template <class T, class G>
void batched(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* const* A,
             int64_t lda, const T* const* B, int64_t ldb, T beta, T* const* C, int64_t ldc, G one) {
  PW_CHECK(batch >= 0, "gemm_batched: negative batch ", batch);
  check_gemm_args(ta, tb, M, N, K, lda, ldb, ldc);
  count_flops(2 * batch * M * N * K);
  if (spread_batch(batch, M, N, K)) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i) one(ta, tb, M, N, K, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc);
  } else {
    for (int64_t i = 0; i < batch; ++i) one(ta, tb, M, N, K, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc);
  }
}

template <class T>
void strided(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
             int64_t lda, int64_t sa, const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc) {
  PW_CHECK(batch >= 0, "gemm_strided_batched: negative batch ", batch);
  std::vector<const T*> pa(batch), pb(batch);
  std::vector<T*> pc(batch);
  for (int64_t i = 0; i < batch; ++i) {
    pa[i] = A + i * sa;
    pb[i] = B + i * sb;
    pc[i] = C + i * sc;
  }
  gemm_batched(ta, tb, batch, M, N, K, alpha, pa.data(), lda, pb.data(), ldb, beta, pc.data(), ldc);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_gemm_args(trans_a, trans_b, M, N, K, lda, ldb, ldc);
  count_flops(2 * M * N * K);
  sgemm_dnnl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  check_gemm_args(trans_a, trans_b, M, N, K, lda, ldb, ldc);
  count_flops(2 * M * N * K);
  gemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* const* A, int64_t lda, const float* const* B, int64_t ldb, float beta,
                  float* const* C, int64_t ldc) {
  batched(trans_a, trans_b, batch, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sgemm_dnnl);
}
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                  const double* const* A, int64_t lda, const double* const* B, int64_t ldb, double beta,
                  double* const* C, int64_t ldc) {
  batched(trans_a, trans_b, batch, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, gemm_blocked<double>);
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                          float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                          int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c) {
  strided(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
}
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                          double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                          int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc, int64_t stride_c) {
  strided(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
}

}  // namespace pw
