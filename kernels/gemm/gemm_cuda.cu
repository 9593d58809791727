#include <cublasLt.h>
#include <cublas_v2.h>

#include <climits>
#include <mutex>

#include "kernels/activation/activation_math.h"
#include "runtime/cuda/common.cuh"
#include "kernels/gemm/gemm_cuda.h"
#include "kernels/gemm/precision.h"

// Throws pw::Error naming the cuBLAS call, file:line and the status.
#define PW_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                          \
    cublasStatus_t pw_st_ = (call);                                                             \
    if (pw_st_ != CUBLAS_STATUS_SUCCESS)                                                        \
      ::pw::detail::fail(__FILE__, __LINE__, "cuBLAS call ", #call, " failed: ",                \
                         cublasGetStatusName(pw_st_), ": ", cublasGetStatusString(pw_st_));     \
  } while (0)

namespace pw {

namespace {

// One cuBLAS and one cuBLASLt handle for the process, bound to the compute stream.
cublasHandle_t blas() {
  static cublasHandle_t h = [] {
    cuda::require("gemm_cuda");
    cublasHandle_t t = nullptr;
    PW_CUBLAS_CHECK(cublasCreate(&t));
    PW_CUBLAS_CHECK(cublasSetStream(t, cuda::stream()));
    return t;
  }();
  return h;
}
constexpr size_t kLtWorkspace = 32u << 20;  // cuBLASLt scratch, allocated once
cublasLtHandle_t blas_lt() {
  static cublasLtHandle_t h = [] {
    cuda::require("gemm_cuda");
    cublasLtHandle_t t = nullptr;
    PW_CUBLAS_CHECK(cublasLtCreate(&t));
    return t;
  }();
  return h;
}
void* lt_workspace() {
  static void* p = cuda::alloc(kLtWorkspace);  // never freed: lives as long as the process
  return p;
}

int to_int(int64_t v, const char* what) {
  PW_CHECK(v >= 0 && v <= INT_MAX, "gemm_cuda: ", what, " = ", v, " does not fit cuBLAS's 32-bit int");
  return (int)v;
}

// A device scratch buffer from the caching allocator, returned when it leaves scope
// (stream-ordered: the kernels queued before the free still see it).
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Scratch(size_t n) : p(n ? cuda::alloc(n) : nullptr), bytes(n) {}
  ~Scratch() {
    if (p) cuda::free(p, bytes);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// dst[i] = bf16(src[i]) (round to nearest even).   dst, src: (n)
__global__ void to_bf16_kernel(__nv_bfloat16* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  PW_GRID_STRIDE(i, n) dst[i] = cuda::float_to_bf16(src[i]);
}
void to_bf16(__nv_bfloat16* dst, const float* src, int64_t n) {
  if (n == 0) return;
  to_bf16_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dst, src, n);
  PW_CUDA_LAUNCH_CHECK();
}

// Elements spanned by `batch` row-major (rows,cols) matrices with row stride ld, stride s apart.
int64_t extent(int64_t batch, int64_t rows, int64_t cols, int64_t ld, int64_t s) {
  if (batch == 0 || rows == 0 || cols == 0) return 0;
  return (batch - 1) * s + (rows - 1) * ld + cols;
}

}  // namespace

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B
// first, m = N, n = M, and each row-major buffer read as its column-major transpose.
template <class T>
void gemm_cuda(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
               int64_t sa, const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc) {
  if (batch == 0 || M == 0 || N == 0) return;
  const cublasOperation_t opA = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opB = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = to_int(N, "N"), n = to_int(M, "M"), k = to_int(K, "K"), nb = to_int(batch, "batch");
  const int ilda = to_int(ldb, "ldb"), ildb = to_int(lda, "lda"), ildc = to_int(ldc, "ldc");
  cublasHandle_t h = blas();
  if constexpr (std::is_same_v<T, double>) {
    PW_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, opA, opB, m, n, k, &alpha, B, CUDA_R_64F, ilda, sb, A, CUDA_R_64F,
                                               ildb, sa, &beta, C, CUDA_R_64F, ildc, sc, nb, CUBLAS_COMPUTE_64F,
                                               CUBLAS_GEMM_DEFAULT));
  } else {
    const Precision p = matmul_precision();
    if (p == Precision::BF16) {
      // Operands to bf16 in the same layout; float32 accumulation and output.
      const int64_t na = extent(batch, ta ? K : M, ta ? M : K, lda, sa);
      const int64_t nbb = extent(batch, tb ? N : K, tb ? K : N, ldb, sb);
      Scratch a16(na * sizeof(__nv_bfloat16)), b16(nbb * sizeof(__nv_bfloat16));
      to_bf16((__nv_bfloat16*)a16.p, A, na);
      to_bf16((__nv_bfloat16*)b16.p, B, nbb);
      PW_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, opA, opB, m, n, k, &alpha, b16.p, CUDA_R_16BF, ilda, sb, a16.p,
                                                 CUDA_R_16BF, ildb, sa, &beta, C, CUDA_R_32F, ildc, sc, nb,
                                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
      const cublasComputeType_t ct = p == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      PW_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, opA, opB, m, n, k, &alpha, B, CUDA_R_32F, ilda, sb, A,
                                                 CUDA_R_32F, ildb, sa, &beta, C, CUDA_R_32F, ildc, sc, nb, ct,
                                                 CUBLAS_GEMM_DEFAULT));
    }
  }
}

namespace {

// y[r, c] = bias[c].   y: (R,C)
template <class T>
__global__ void bias_rows_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t R, int64_t C) {
  PW_GRID_STRIDE(i, R * C) y[i] = bias[i % C];
}

constexpr int kColTile = 32, kRowLanes = 8;  // column-sum block: 32 columns x 8 row lanes
constexpr int64_t kRowChunk = 1024;          // rows per partial sum
// part[k, c] = sum of dy[r, c] over rows r of chunk k, in a fixed order: lane ty
// sums rows ty, ty+8, ... of the chunk, then lane 0 adds the 8 lane sums in order.
// dy: (R,C)  part: (ceil(R/kRowChunk), C)   grid (ceil(C/32), chunks), block (32, 8)
template <class T>
__global__ void column_partial_kernel(double* __restrict__ part, const T* __restrict__ dy, int64_t R, int64_t C) {
  __shared__ double lane[kRowLanes][kColTile + 1];
  const int64_t c = (int64_t)blockIdx.x * kColTile + threadIdx.x, k = blockIdx.y;
  const int64_t r0 = k * kRowChunk, r1 = r0 + kRowChunk < R ? r0 + kRowChunk : R;
  double acc = 0;
  if (c < C)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) acc += (double)dy[r * C + c];
  lane[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double s = 0;
    for (int j = 0; j < kRowLanes; ++j) s += lane[j][threadIdx.x];
    part[k * C + c] = s;
  }
}
// dbias[c] (+)= sum over chunks k in order of part[k, c].   part: (nk, C)
template <class T>
__global__ void column_final_kernel(T* __restrict__ dbias, const double* __restrict__ part, int64_t nk, int64_t C,
                                    bool overwrite) {
  PW_GRID_STRIDE(c, C) {
    double s = 0;
    for (int64_t k = 0; k < nk; ++k) s += part[k * C + c];
    dbias[c] = overwrite ? (T)s : (T)(dbias[c] + (T)s);
  }
}

template <class T>
__global__ void gelu_tanh_fwd_kernel(T* __restrict__ y, const T* __restrict__ pre, int64_t n) {
  PW_GRID_STRIDE(i, n) y[i] = math::gelu_tanh_fwd(pre[i]);
}
template <class T>
__global__ void gelu_tanh_bwd_kernel(T* __restrict__ dpre, const T* __restrict__ pre, const T* __restrict__ dy,
                                     int64_t n) {
  PW_GRID_STRIDE(i, n) dpre[i] = math::gelu_tanh_bwd(pre[i], dy[i]);
}

}  // namespace

template <class T> void bias_rows_cuda(T* y, const T* bias, int64_t R, int64_t C) {
  if (R * C == 0) return;
  bias_rows_kernel<T><<<cuda::grid_for(R * C), cuda::kBlock, 0, cuda::stream()>>>(y, bias, R, C);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T> void column_sum_cuda(T* dbias, const T* dy, int64_t R, int64_t C, bool overwrite) {
  if (C == 0) return;
  const int64_t nk = R == 0 ? 0 : (R + kRowChunk - 1) / kRowChunk;
  Scratch part((size_t)(nk * C) * sizeof(double));
  if (nk > 0) {
    PW_CHECK(nk < 65536, "linear: ", R, " rows exceed the column sum's grid (", 65535 * kRowChunk, ")");
    dim3 grid((unsigned)((C + kColTile - 1) / kColTile), (unsigned)nk), block(kColTile, kRowLanes);
    column_partial_kernel<T><<<grid, block, 0, cuda::stream()>>>((double*)part.p, dy, R, C);
    PW_CUDA_LAUNCH_CHECK();
  }
  column_final_kernel<T><<<cuda::grid_for(C), cuda::kBlock, 0, cuda::stream()>>>(dbias, (const double*)part.p, nk,
                                                                                  C, overwrite);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T> void gelu_tanh_forward_cuda(T* y, const T* pre, int64_t n) {
  if (n == 0) return;
  gelu_tanh_fwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, pre, n);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T> void gelu_tanh_backward_cuda(T* dpre, const T* pre, const T* dy, int64_t n) {
  if (n == 0) return;
  gelu_tanh_bwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dpre, pre, dy, n);
  PW_CUDA_LAUNCH_CHECK();
}

namespace {

// RAII for the cuBLASLt descriptors of one call.
struct LtCall {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtCall() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// The fused epilogue; false (nothing promised about y, pre) when cuBLASLt declines.
// Column-major: D^T (Dout,R) = W (Dout,Din) @ X^T (Din,R) + bias; the w buffer is
// W^T col-major (Din,Dout) read with TRANSA = T, the x buffer is X^T (Din,R).
bool linear_gelu_lt(float* y, float* pre, const float* x, const float* w, const float* bias, int64_t R, int64_t Din,
                    int64_t Dout) {
  auto aligned = [](const void* p) { return ((uintptr_t)p & 15) == 0; };
  if (Dout % 8 != 0 || Din % 4 != 0 || !aligned(y) || !aligned(pre) || !aligned(x) || !aligned(w) ||
      !aligned(bias))
    return false;
  const Precision p = matmul_precision();
  const bool bf16 = p == Precision::BF16;
  const cudaDataType_t ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t ct = p == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  LtCall c;
  if (cublasLtMatmulDescCreate(&c.op, ct, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) return false;
  const cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
  const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  const int64_t aux_ld = Dout;
  const cudaDataType_t bias_type = CUDA_R_32F;
  auto set = [&](cublasLtMatmulDescAttributes_t attr, const void* v, size_t n) {
    return cublasLtMatmulDescSetAttribute(c.op, attr, v, n) == CUBLAS_STATUS_SUCCESS;
  };
  if (!set(CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA) || !set(CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB) ||
      !set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) ||
      !set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) ||
      !set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type) ||
      !set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &pre, sizeof pre) ||
      !set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld))
    return false;
  if (cublasLtMatrixLayoutCreate(&c.a, ab, (uint64_t)Din, (uint64_t)Dout, Din) != CUBLAS_STATUS_SUCCESS ||
      cublasLtMatrixLayoutCreate(&c.b, ab, (uint64_t)Din, (uint64_t)R, Din) != CUBLAS_STATUS_SUCCESS ||
      cublasLtMatrixLayoutCreate(&c.d, CUDA_R_32F, (uint64_t)Dout, (uint64_t)R, Dout) != CUBLAS_STATUS_SUCCESS)
    return false;
  const uint64_t ws = kLtWorkspace;
  if (cublasLtMatmulPreferenceCreate(&c.pref) != CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) !=
          CUBLAS_STATUS_SUCCESS)
    return false;
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  if (cublasLtMatmulAlgoGetHeuristic(blas_lt(), c.op, c.a, c.b, c.d, c.d, c.pref, 1, &heur, &found) !=
          CUBLAS_STATUS_SUCCESS ||
      found == 0)
    return false;
  const float alpha = 1.f, beta = 0.f;
  const void* A = w;
  const void* B = x;
  Scratch w16(bf16 ? Din * Dout * sizeof(__nv_bfloat16) : 0), x16(bf16 ? R * Din * sizeof(__nv_bfloat16) : 0);
  if (bf16) {
    to_bf16((__nv_bfloat16*)w16.p, w, Din * Dout);
    to_bf16((__nv_bfloat16*)x16.p, x, R * Din);
    A = w16.p;
    B = x16.p;
  }
  return cublasLtMatmul(blas_lt(), c.op, &alpha, A, c.a, B, c.b, &beta, y, c.d, y, c.d, &heur.algo, lt_workspace(),
                        kLtWorkspace, cuda::stream()) == CUBLAS_STATUS_SUCCESS;
}

}  // namespace

template <class T>
bool linear_gelu_gemm_cuda(T* y, T* pre, const T* x, const T* w, const T* bias, int64_t R, int64_t Din,
                              int64_t Dout, bool force_unfused) {
  if (R * Dout == 0) return false;
  if constexpr (std::is_same_v<T, float>) {
    if (!force_unfused && Din > 0 && linear_gelu_lt(y, pre, x, w, bias, R, Din, Dout)) return true;
  }
  bias_rows_cuda(pre, bias, R, Dout);
  gemm_cuda<T>(false, true, 1, R, Dout, Din, T(1), x, Din, 0, w, Din, 0, T(1), pre, Dout, 0);
  gelu_tanh_forward_cuda(y, pre, R * Dout);
  return false;
}

#define PW_INSTANTIATE(T)                                                                                         \
  template void gemm_cuda<T>(bool, bool, int64_t, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t,      \
                             const T*, int64_t, int64_t, T, T*, int64_t, int64_t);                                \
  template void bias_rows_cuda<T>(T*, const T*, int64_t, int64_t);                                                \
  template void column_sum_cuda<T>(T*, const T*, int64_t, int64_t, bool);                                         \
  template void gelu_tanh_forward_cuda<T>(T*, const T*, int64_t);                                                 \
  template void gelu_tanh_backward_cuda<T>(T*, const T*, const T*, int64_t);                                      \
  template bool linear_gelu_gemm_cuda<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, bool);
PW_INSTANTIATE(float)
PW_INSTANTIATE(double)
#undef PW_INSTANTIATE

}  // namespace pw
