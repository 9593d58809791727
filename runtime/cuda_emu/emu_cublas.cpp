// cuBLAS / cuBLASLt stand-ins for the CPU emulator: naive column-major loops with the
// argument checks the cuBLAS documentation states (leading dimensions, type combos) plus
// a check that every matrix lies inside one device allocation.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "include/cublasLt.h"
#include "include/cublas_v2.h"
#include "include/cuda_bf16.h"

namespace emu {
bool is_device_range(const void* p, size_t n);
void log_call(const char* name);
}

struct emu_cublas {
  cudaStream_t s;
};
struct emu_lt {};
struct emu_lt_desc {
  cublasComputeType_t ct;
  cudaDataType_t scale;
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  cudaDataType_t bias_type = CUDA_R_32F;
  void* aux = nullptr;
  int64_t aux_ld = 0;
};
struct emu_lt_layout {
  cudaDataType t;
  uint64_t rows, cols;
  int64_t ld;
};
struct emu_lt_pref {
  uint64_t ws = 0;
};

namespace {

size_t esize(cudaDataType t) { return t == CUDA_R_64F ? 8 : t == CUDA_R_32F ? 4 : 2; }
double load(const void* p, cudaDataType t, size_t i) {
  switch (t) {
    case CUDA_R_64F: return ((const double*)p)[i];
    case CUDA_R_32F: return ((const float*)p)[i];
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16*)p)[i]);
    default: return NAN;
  }
}
void store(void* p, cudaDataType t, size_t i, double v) {
  switch (t) {
    case CUDA_R_64F: ((double*)p)[i] = v; break;
    case CUDA_R_32F: ((float*)p)[i] = (float)v; break;
    case CUDA_R_16BF: ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn((float)v); break;
    default: break;
  }
}
float tf32(float x) {  // round to nearest (ties away), 10 mantissa bits
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &u, 4);
  return x;
}
// Elements spanned by a column-major (rows, cols) matrix with leading dim ld, `batch` of them stride apart.
size_t span(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  return (size_t)((batch - 1) * stride + (cols - 1) * ld + rows);
}
bool on_device(const char* what, const void* p, size_t elems, cudaDataType t) {
  if (elems == 0) return true;
  if (emu::is_device_range(p, elems * esize(t))) return true;
  std::fprintf(stderr, "cuda-emu cuBLAS: matrix %s (%p, %zu elements) is not inside one device allocation\n", what, p,
               elems);
  return false;
}

// C = alpha op(A) op(B) + beta C, column-major, one matrix.
void gemm1(bool ta, bool tb, int m, int n, int k, double alpha, const void* A, cudaDataType At, int lda,
           const void* B, cudaDataType Bt, int ldb, double beta, void* C, cudaDataType Ct, int ldc,
           cublasComputeType_t ct) {
  const bool dbl = ct == CUBLAS_COMPUTE_64F, t32 = ct == CUBLAS_COMPUTE_32F_FAST_TF32;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double accd = 0;
      float accf = 0;
      for (int l = 0; l < k; ++l) {
        double a = load(A, At, ta ? (size_t)l + (size_t)i * lda : (size_t)i + (size_t)l * lda);
        double b = load(B, Bt, tb ? (size_t)j + (size_t)l * ldb : (size_t)l + (size_t)j * ldb);
        if (dbl) {
          accd += a * b;
        } else {
          float af = (float)a, bf = (float)b;
          if (t32) af = tf32(af), bf = tf32(bf);
          accf = std::fma(af, bf, accf);
        }
      }
      const double acc = dbl ? accd : (double)accf;
      const size_t ci = (size_t)i + (size_t)j * ldc;
      const double v = beta == 0 ? alpha * acc : alpha * acc + beta * load(C, Ct, ci);  // beta 0: C not read
      store(C, Ct, ci, v);
    }
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new emu_cublas{nullptr};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  h->s = s;
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_?";
  }
}
const char* cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb, int m,
                                          int n, int k, const void* alpha, const void* A, cudaDataType At, int lda,
                                          long long sA, const void* B, cudaDataType Bt, int ldb, long long sB,
                                          const void* beta, void* C, cudaDataType Ct, int ldc, long long sC,
                                          int batch, cublasComputeType_t ct, cublasGemmAlgo_t) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  emu::log_call(ct == CUBLAS_COMPUTE_64F ? "cublasGemmStridedBatchedEx f64"
                : At == CUDA_R_16BF      ? "cublasGemmStridedBatchedEx bf16"
                : ct == CUBLAS_COMPUTE_32F_FAST_TF32 ? "cublasGemmStridedBatchedEx tf32"
                                                     : "cublasGemmStridedBatchedEx f32");
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) ||
      ldc < std::max(1, m)) {
    std::fprintf(stderr, "cuda-emu cuBLAS: GemmStridedBatchedEx m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d: invalid\n",
                 m, n, k, lda, ldb, ldc, batch);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const bool ok_types = (ct == CUBLAS_COMPUTE_64F && At == CUDA_R_64F && Bt == CUDA_R_64F && Ct == CUDA_R_64F) ||
                        ((ct == CUBLAS_COMPUTE_32F || ct == CUBLAS_COMPUTE_32F_FAST_TF32) && At == CUDA_R_32F &&
                         Bt == CUDA_R_32F && Ct == CUDA_R_32F) ||
                        (ct == CUBLAS_COMPUTE_32F && At == CUDA_R_16BF && Bt == CUDA_R_16BF &&
                         (Ct == CUDA_R_32F || Ct == CUDA_R_16BF));
  if (!ok_types) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  if (!on_device("A", A, span(ta ? k : m, ta ? m : k, lda, batch, sA), At) ||
      !on_device("B", B, span(tb ? n : k, tb ? k : n, ldb, batch, sB), Bt) ||
      !on_device("C", C, span(m, n, ldc, batch, sC), Ct))
    return CUBLAS_STATUS_INVALID_VALUE;
  const bool dbl = ct == CUBLAS_COMPUTE_64F;
  const double a = dbl ? *(const double*)alpha : *(const float*)alpha;
  const double b = dbl ? *(const double*)beta : *(const float*)beta;
  for (int i = 0; i < batch; ++i)
    gemm1(ta, tb, m, n, k, a, (const char*)A + sA * i * esize(At), At, lda, (const char*)B + sB * i * esize(Bt), Bt,
          ldb, b, (char*)C + sC * i * esize(Ct), Ct, ldc, ct);
  return CUBLAS_STATUS_SUCCESS;
}

// ---- cuBLASLt ----
cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  *h = new emu_lt{};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t ct, cudaDataType_t scale) {
  *d = new emu_lt_desc{ct, scale};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete d;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void* v,
                                              size_t n) {
  auto get = [&](void* dst, size_t want) {
    if (n != want) return false;
    std::memcpy(dst, v, n);
    return true;
  };
  bool ok = false;
  switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: ok = get(&d->ta, sizeof d->ta); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: ok = get(&d->tb, sizeof d->tb); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: ok = get(&d->epi, sizeof d->epi); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: ok = get(&d->bias, sizeof d->bias); break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: ok = get(&d->bias_type, sizeof d->bias_type); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: ok = get(&d->aux, sizeof d->aux); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: ok = get(&d->aux_ld, sizeof d->aux_ld); break;
  }
  return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType t, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  if (ld < (int64_t)std::max<uint64_t>(1, rows)) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new emu_lt_layout{t, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete l;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  *p = new emu_lt_pref{};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t,
                                                    const void* v, size_t n) {
  if (n != sizeof p->ws) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(&p->ws, v, n);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t* results, int* returned) {
  const uint64_t am = d->ta == CUBLAS_OP_N ? a->rows : a->cols, ak = d->ta == CUBLAS_OP_N ? a->cols : a->rows;
  const uint64_t bk = d->tb == CUBLAS_OP_N ? b->rows : b->cols, bn = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
  *returned = 0;
  if (requested < 1 || am != dl->rows || bn != dl->cols || ak != bk || c->rows != dl->rows || c->cols != dl->cols) {
    std::fprintf(stderr, "cuda-emu cuBLASLt: inconsistent shapes op(A) %llux%llu op(B) %llux%llu D %llux%llu\n",
                 (unsigned long long)am, (unsigned long long)ak, (unsigned long long)bk, (unsigned long long)bn,
                 (unsigned long long)dl->rows, (unsigned long long)dl->cols);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  std::memset(&results[0], 0, sizeof results[0]);
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Ad, const void* B, cublasLtMatrixLayout_t Bd, const void* beta,
                              const void* C, cublasLtMatrixLayout_t Cd, void* D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t) {
  emu::log_call("cublasLtMatmul (GELU_AUX_BIAS epilogue)");
  const bool ta = d->ta != CUBLAS_OP_N, tb = d->tb != CUBLAS_OP_N;
  const int m = (int)Dd->rows, n = (int)Dd->cols, k = (int)(ta ? Ad->rows : Ad->cols);
  const bool gelu = d->epi == CUBLASLT_EPILOGUE_GELU || d->epi == CUBLASLT_EPILOGUE_GELU_AUX ||
                    d->epi == CUBLASLT_EPILOGUE_GELU_BIAS || d->epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  const bool has_bias = d->epi == CUBLASLT_EPILOGUE_BIAS || d->epi == CUBLASLT_EPILOGUE_GELU_BIAS ||
                        d->epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  const bool has_aux = d->epi == CUBLASLT_EPILOGUE_GELU_AUX || d->epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  if (has_aux && (!d->aux || d->aux_ld < m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (has_bias && (!d->bias || d->bias_type != CUDA_R_32F)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!on_device("A", A, span(Ad->rows, Ad->cols, Ad->ld, 1, 0), Ad->t) ||
      !on_device("B", B, span(Bd->rows, Bd->cols, Bd->ld, 1, 0), Bd->t) ||
      !on_device("D", D, span(Dd->rows, Dd->cols, Dd->ld, 1, 0), Dd->t) ||
      (has_bias && !on_device("bias", d->bias, (size_t)m, CUDA_R_32F)) ||
      (has_aux && !on_device("aux", d->aux, span(m, n, d->aux_ld, 1, 0), Dd->t)))
    return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *(const float*)alpha, be = *(const float*)beta;
  const cublasComputeType_t ct = d->ct;
  const bool t32 = ct == CUBLAS_COMPUTE_32F_FAST_TF32;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      float acc = 0;
      for (int l = 0; l < k; ++l) {
        float a = (float)load(A, Ad->t, ta ? (size_t)l + (size_t)i * Ad->ld : (size_t)i + (size_t)l * Ad->ld);
        float b = (float)load(B, Bd->t, tb ? (size_t)j + (size_t)l * Bd->ld : (size_t)l + (size_t)j * Bd->ld);
        if (t32) a = tf32(a), b = tf32(b);
        acc = std::fma(a, b, acc);
      }
      float v = al * acc;
      if (be != 0) v += be * (float)load(C, Cd->t, (size_t)i + (size_t)j * Cd->ld);
      if (has_bias) v += ((const float*)d->bias)[i];
      if (has_aux) store(d->aux, Dd->t, (size_t)i + (size_t)j * d->aux_ld, v);
      if (gelu) v = 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
      store(D, Dd->t, (size_t)i + (size_t)j * Dd->ld, v);
    }
  return CUBLAS_STATUS_SUCCESS;
}
