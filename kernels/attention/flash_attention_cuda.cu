// Flash attention on CUDA: FlashAttention-2 structure, everything staged in shared memory.
//
// Forward, one block per (Q tile of BQ rows, b*NH+h): loop over K/V tiles of BK rows with
// the online softmax (running max m and sum l per row), o accumulated in fp32 shared memory.
// Backward, deterministic (no atomics anywhere):
//   1. delta = rowsum(do * o)                      one warp per row
//   2. dq: one block per (Q tile, b*NH+h), loop over K/V tiles, recomputing s, p, dp, ds;
//      dq += ds k.
//   3. dk, dv, dbias: one block per (K/V tile, bias group), loop over the (b,h) of the group in
//      a fixed order and, for each, over the Q tiles: dv += p^T do, dk += ds^T q,
//      dbias[group, q rows, k cols] (=, then +=) ds. The block owns its dbias column strip,
//      so the sum over the broadcast (b,h) is a fixed-order sequential one.
// So backward runs 7 N*N*HD matmuls (FA2 runs 5 with an atomic dq): the price of determinism.
//
// Matmuls on shared-memory tiles: fp32 by a 16x8 thread grid of register micro-tiles (exact
// fp32 FMAs); bf16 by nvcuda::wmma 16x16x16 with fp32 accumulation (tensor cores). Softmax
// statistics, delta and every accumulator are fp32.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "runtime/check.h"
#include "kernels/attention/flash_attention_cuda.h"
#include "runtime/cuda/common.cuh"


namespace pw {

namespace {

using namespace nvcuda;
using bf16 = __nv_bfloat16;

constexpr int kThreads = 128;  // 4 warps per block, every kernel
constexpr int kWarps = kThreads / 32;

// Tile rows: 64 for bf16 with HD <= 64, else 32 (keeps shared memory under sm_80's 163 KB).
template <class T, int HD>
struct Tiles {
  static constexpr int BQ = (std::is_same_v<T, bf16> && HD <= 64) ? 64 : 32;
  static constexpr int BK = BQ;
  // Padded shared-memory row strides (elements): +16 bytes per row against bank conflicts;
  // every row stride stays a multiple of 16 bytes and every 16-row block of a tile starts
  // 256-bit aligned, as wmma's load/store requires.
  static constexpr int LDT = HD + 16 / (int)sizeof(T);  // T tiles (rows, HD): q, k, v, do
  static constexpr int LDP = BK + 16 / (int)sizeof(T);  // T tiles (BQ, BK): p, ds
  static constexpr int LDS = BK + 4;                     // float (BQ, BK): s, dp
  static constexpr int LDO = HD + 4;                     // float (rows, HD): o, dq, dk, dv
};

using cuda::from_float;
using cuda::to_float;
// exp: libm-accurate for the fp32 path (checked at 1e-4), the fast SFU one for bf16.
template <class T>
__device__ __forceinline__ float fexp(float x) {
  if constexpr (std::is_same_v<T, float>)
    return expf(x);
  else
    return __expf(x);
}

using cuda::warp_sum;
// Fixed butterfly order, as cuda::warp_sum: deterministic.
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// c (M,N) float row-major, ldc  (+)= A (M,K) * B (K,N), all in shared memory, all threads.
// A(m,k) = A_COL ? a[k*lda + m] : a[m*lda + k];   B(k,n) = B_COL ? b[n*ldb + k] : b[k*ldb + n].
// fp32: thread (tr, tc) of a 16x8 grid owns rows tr + 16i and columns tc + 8j.
template <int M, int N, int K, bool A_COL, bool B_COL>
__device__ __forceinline__ void mma_smem(float* c, int ldc, const float* a, int lda, const float* b, int ldb,
                                         bool acc) {
  static_assert(M % 16 == 0 && N % 8 == 0, "fp32 micro-tiles need M % 16 == 0 and N % 8 == 0");
  constexpr int RM = M / 16, RN = N / 8;
  const int tr = threadIdx.x / 8, tc = threadIdx.x % 8;
  float r[RM][RN];
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) r[i][j] = acc ? c[(tr + 16 * i) * ldc + tc + 8 * j] : 0.f;
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    float av[RM], bv[RN];
#pragma unroll
    for (int i = 0; i < RM; ++i) {
      const int m = tr + 16 * i;
      av[i] = A_COL ? a[k * lda + m] : a[m * lda + k];
    }
#pragma unroll
    for (int j = 0; j < RN; ++j) {
      const int n = tc + 8 * j;
      bv[j] = B_COL ? b[n * ldb + k] : b[k * ldb + n];
    }
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
      for (int j = 0; j < RN; ++j) r[i][j] = fmaf(av[i], bv[j], r[i][j]);
  }
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) c[(tr + 16 * i) * ldc + tc + 8 * j] = r[i][j];
}

// bf16: warp w owns the 16x16 output tiles w, w + 4, ...; wmma 16x16x16, fp32 accumulators.
template <int M, int N, int K, bool A_COL, bool B_COL>
__device__ __forceinline__ void mma_smem(float* c, int ldc, const bf16* a, int lda, const bf16* b, int ldb,
                                         bool acc) {
  static_assert(M % 16 == 0 && N % 16 == 0 && K % 16 == 0, "wmma tiles need multiples of 16");
  using LA = std::conditional_t<A_COL, wmma::col_major, wmma::row_major>;
  using LB = std::conditional_t<B_COL, wmma::col_major, wmma::row_major>;
  constexpr int TN = N / 16, TILES = (M / 16) * TN;
  const int warp = threadIdx.x / 32;
  for (int t = warp; t < TILES; t += kWarps) {
    const int tm = t / TN, tn = t % TN;
    float* ct = c + tm * 16 * ldc + tn * 16;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> cf;
    if (acc)
      wmma::load_matrix_sync(cf, ct, ldc, wmma::mem_row_major);
    else
      wmma::fill_fragment(cf, 0.f);
#pragma unroll
    for (int kk = 0; kk < K; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, LA> af;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LB> bfr;
      wmma::load_matrix_sync(af, A_COL ? a + kk * lda + tm * 16 : a + tm * 16 * lda + kk, lda);
      wmma::load_matrix_sync(bfr, B_COL ? b + tn * 16 * ldb + kk : b + kk * ldb + tn * 16, ldb);
      wmma::mma_sync(cf, af, bfr, cf);
    }
    wmma::store_matrix_sync(ct, cf, ldc, wmma::mem_row_major);
  }
}

// dst (R, HD) with row stride LD  =  rows row0.. of src (N, HD); rows >= N are zero.
// 16-byte vector copies (HD * sizeof(T) is a multiple of 16; the launchers check alignment).
template <class T, int R, int HD, int LD>
__device__ __forceinline__ void load_rows(T* dst, const T* src, int row0, int N) {
  constexpr int V = 16 / (int)sizeof(T), CH = HD / V;
  for (int e = threadIdx.x; e < R * CH; e += kThreads) {
    const int r = e / CH, c = (e % CH) * V;
    uint4 val = make_uint4(0u, 0u, 0u, 0u);
    if (row0 + r < N) val = *reinterpret_cast<const uint4*>(src + (size_t)(row0 + r) * HD + c);
    *reinterpret_cast<uint4*>(dst + r * LD + c) = val;
  }
}

__device__ __forceinline__ void fill_f(float* p, int n, float v) {
  for (int e = threadIdx.x; e < n; e += kThreads) p[e] = v;
}

// The (N,N) bias plane that head (b,h) reads: bias (Bb,Hb,N,N), Bb in {1,B}, Hb in {1,NH}.
__device__ __forceinline__ const float* bias_plane(const float* bias, int Bb, int Hb, int b, int h, int N) {
  if (!bias) return nullptr;
  return bias + ((size_t)(Bb == 1 ? 0 : b) * Hb + (Hb == 1 ? 0 : h)) * (size_t)N * N;
}

template <class T, int HD>
constexpr size_t fwd_smem() {
  using C = Tiles<T, HD>;
  return (size_t)(C::BQ + 2 * C::BK) * C::LDT * sizeof(T) + (size_t)C::BQ * C::LDP * sizeof(T) +
         (size_t)C::BQ * C::LDS * 4 + (size_t)C::BQ * C::LDO * 4 + 2 * C::BQ * 4;
}

// o: (B,NH,N,HD)  lse: (B,NH,N)  q, k, v: (B,NH,N,HD)  bias: (Bb,Hb,N,N) or null
// grid (ceil(N/BQ), B*NH)
template <class T, int HD>
__global__ void __launch_bounds__(kThreads)
    flash_fwd_kernel(T* o, float* lse, const T* q, const T* k, const T* v, const float* bias, int Bb, int Hb,
                     int NH, int N, float scale) {
  using C = Tiles<T, HD>;
  constexpr int BQ = C::BQ, BK = C::BK, LDT = C::LDT, LDP = C::LDP, LDS = C::LDS, LDO = C::LDO;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);  // (BQ, HD)
  T* sK = sQ + BQ * LDT;               // (BK, HD)
  T* sV = sK + BK * LDT;               // (BK, HD)
  T* sP = sV + BK * LDT;               // (BQ, BK) probabilities, unnormalised
  float* sS = reinterpret_cast<float*>(sP + BQ * LDP);  // (BQ, BK) logits
  float* sO = sS + BQ * LDS;                           // (BQ, HD) unnormalised output
  float* sM = sO + BQ * LDO;                           // (BQ) running max
  float* sL = sM + BQ;                                 // (BQ) running sum of exp(s - m)

  const int bh = blockIdx.y, b = bh / NH, h = bh % NH;
  const int q0 = blockIdx.x * BQ;
  const size_t head = (size_t)bh * N * HD;
  const float* bp = bias_plane(bias, Bb, Hb, b, h, N);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  load_rows<T, BQ, HD, LDT>(sQ, q + head, q0, N);
  fill_f(sO, BQ * LDO, 0.f);
  fill_f(sM, BQ, -INFINITY);
  fill_f(sL, BQ, 0.f);

  for (int k0 = 0; k0 < N; k0 += BK) {
    load_rows<T, BK, HD, LDT>(sK, k + head, k0, N);
    load_rows<T, BK, HD, LDT>(sV, v + head, k0, N);
    __syncthreads();
    mma_smem<BQ, BK, HD, false, true>(sS, LDS, sQ, LDT, sK, LDT, false);  // s = q k^T
    __syncthreads();
    // Online softmax, one warp per row: s = scale*qk + bias (-inf past N), new max, p, l, rescale o.
    for (int r = warp; r < BQ; r += kWarps) {
      const int gi = q0 + r;
      float* srow = sS + r * LDS;
      float mx = -INFINITY;
      for (int c = lane; c < BK; c += 32) {
        const int gj = k0 + c;
        float s = -INFINITY;
        if (gj < N) {
          s = srow[c] * scale;
          if (bp && gi < N) s += bp[(size_t)gi * N + gj];
        }
        srow[c] = s;
        mx = fmaxf(mx, s);
      }
      mx = warp_max(mx);  // also: every lane has finished the loop above
      const float m_old = sM[r];
      const float m_new = fmaxf(m_old, mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // all -inf so far: p = 0, not NaN
      float sum = 0.f;
      for (int c = lane; c < BK; c += 32) {
        const float p = fexp<T>(srow[c] - m_use);
        sP[r * LDP + c] = from_float<T>(p);
        sum += p;
      }
      sum = warp_sum(sum);  // every lane has read m_old before lane 0 writes below
      const float alpha = fexp<T>(m_old - m_use);
      for (int c = lane; c < HD; c += 32) sO[r * LDO + c] *= alpha;
      if (lane == 0) {
        sM[r] = m_new;
        sL[r] = sL[r] * alpha + sum;
      }
    }
    __syncthreads();
    mma_smem<BQ, HD, BK, false, false>(sO, LDO, sP, LDP, sV, LDT, true);  // o += p v
    __syncthreads();
  }

  for (int r = warp; r < BQ; r += kWarps) {
    const int gi = q0 + r;
    if (gi >= N) continue;
    const float l = sL[r];
    const float inv = l > 0.f ? 1.f / l : 0.f;
    for (int c = lane; c < HD; c += 32) o[head + (size_t)gi * HD + c] = from_float<T>(sO[r * LDO + c] * inv);
    if (lane == 0) lse[(size_t)bh * N + gi] = l > 0.f ? sM[r] + logf(l) : -INFINITY;
  }
}

// delta = rowsum(do * o).   delta: (rows)  o, dout: (rows, HD). One warp per row.
template <class T>
__global__ void __launch_bounds__(kThreads)
    flash_bwd_delta_kernel(float* delta, const T* o, const T* dout, int64_t rows, int HD) {
  const int64_t row = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float s = 0.f;
  for (int c = lane; c < HD; c += 32) s += to_float(o[row * HD + c]) * to_float(dout[row * HD + c]);
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
}

template <class T, int HD>
constexpr size_t dq_smem() {
  using C = Tiles<T, HD>;
  return (size_t)(2 * C::BQ + 2 * C::BK) * C::LDT * sizeof(T) + (size_t)C::BQ * C::LDP * sizeof(T) +
         2 * (size_t)C::BQ * C::LDS * 4 + (size_t)C::BQ * C::LDO * 4 + 2 * C::BQ * 4;
}

// ds = p * (dp - delta) for one (BQ, BK) tile from s (pre-scale q k^T) and dp, both in sS/sdP.
// Writes p (if sP) and ds as T; returns nothing. Elements past N, and rows with lse = -inf
// (fully masked), get p = ds = 0. If dbias_plane: dbias[gi, gj] (= if first, else +=) ds.
template <class T, int BQ, int BK, int LDS, int LDP>
__device__ __forceinline__ void bwd_tile_ds(T* sP, T* sdS, const float* sS, const float* sdP, const float* sLse,
                                            const float* sD, const float* bp, float* dbp, bool first, int q0,
                                            int k0, int N, float scale) {
  for (int e = threadIdx.x; e < BQ * BK; e += kThreads) {
    const int r = e / BK, c = e % BK, gi = q0 + r, gj = k0 + c;
    float p = 0.f, ds = 0.f;
    if (gi < N && gj < N && sLse[r] != -INFINITY) {
      float s = sS[r * LDS + c] * scale;
      if (bp) s += bp[(size_t)gi * N + gj];
      p = fexp<T>(s - sLse[r]);
      ds = p * (sdP[r * LDS + c] - sD[r]);
    }
    if (sP) sP[r * LDP + c] = from_float<T>(p);
    sdS[r * LDP + c] = from_float<T>(ds);
    if (dbp && gi < N && gj < N) {
      float* d = dbp + (size_t)gi * N + gj;
      *d = first ? ds : *d + ds;
    }
  }
}

// Loads lse and delta of rows q0.. of head bh into sLse, sD (rows past N: -inf, 0).
template <int BQ>
__device__ __forceinline__ void load_row_stats(float* sLse, float* sD, const float* lse, const float* delta,
                                               size_t bh, int q0, int N) {
  for (int r = threadIdx.x; r < BQ; r += kThreads) {
    const int gi = q0 + r;
    sLse[r] = gi < N ? lse[bh * N + gi] : -INFINITY;
    sD[r] = gi < N ? delta[bh * N + gi] : 0.f;
  }
}

// dq = scale * sum_j ds k.   dq, q, dout: (B,NH,N,HD)  k, v: (B,NH,N,HD)  lse, delta: (B,NH,N)
// grid (ceil(N/BQ), B*NH)
template <class T, int HD>
__global__ void __launch_bounds__(kThreads)
    flash_bwd_dq_kernel(T* dq, const T* q, const T* k, const T* v, const T* dout, const float* lse,
                        const float* delta, const float* bias, int Bb, int Hb, int NH, int N, float scale) {
  using C = Tiles<T, HD>;
  constexpr int BQ = C::BQ, BK = C::BK, LDT = C::LDT, LDP = C::LDP, LDS = C::LDS, LDO = C::LDO;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);  // (BQ, HD)
  T* sdO = sQ + BQ * LDT;              // (BQ, HD)
  T* sK = sdO + BQ * LDT;              // (BK, HD)
  T* sV = sK + BK * LDT;               // (BK, HD)
  T* sdS = sV + BK * LDT;              // (BQ, BK)
  float* sS = reinterpret_cast<float*>(sdS + BQ * LDP);  // (BQ, BK)
  float* sdP = sS + BQ * LDS;                           // (BQ, BK)
  float* sdQ = sdP + BQ * LDS;                          // (BQ, HD)
  float* sLse = sdQ + BQ * LDO;                         // (BQ)
  float* sD = sLse + BQ;                                // (BQ)

  const int bh = blockIdx.y, b = bh / NH, h = bh % NH;
  const int q0 = blockIdx.x * BQ;
  const size_t head = (size_t)bh * N * HD;
  const float* bp = bias_plane(bias, Bb, Hb, b, h, N);

  load_rows<T, BQ, HD, LDT>(sQ, q + head, q0, N);
  load_rows<T, BQ, HD, LDT>(sdO, dout + head, q0, N);
  load_row_stats<BQ>(sLse, sD, lse, delta, bh, q0, N);
  fill_f(sdQ, BQ * LDO, 0.f);

  for (int k0 = 0; k0 < N; k0 += BK) {
    load_rows<T, BK, HD, LDT>(sK, k + head, k0, N);
    load_rows<T, BK, HD, LDT>(sV, v + head, k0, N);
    __syncthreads();
    mma_smem<BQ, BK, HD, false, true>(sS, LDS, sQ, LDT, sK, LDT, false);   // s = q k^T
    mma_smem<BQ, BK, HD, false, true>(sdP, LDS, sdO, LDT, sV, LDT, false);  // dp = do v^T
    __syncthreads();
    bwd_tile_ds<T, BQ, BK, LDS, LDP>(nullptr, sdS, sS, sdP, sLse, sD, bp, nullptr, false, q0, k0, N, scale);
    __syncthreads();
    mma_smem<BQ, HD, BK, false, false>(sdQ, LDO, sdS, LDP, sK, LDT, true);  // dq += ds k
    __syncthreads();
  }
  for (int e = threadIdx.x; e < BQ * HD; e += kThreads) {
    const int r = e / HD, c = e % HD, gi = q0 + r;
    if (gi < N) dq[head + (size_t)gi * HD + c] = from_float<T>(sdQ[r * LDO + c] * scale);
  }
}

template <class T, int HD>
constexpr size_t dkdv_smem() {
  using C = Tiles<T, HD>;
  return (size_t)(2 * C::BQ + 2 * C::BK) * C::LDT * sizeof(T) + 2 * (size_t)C::BQ * C::LDP * sizeof(T) +
         2 * (size_t)C::BQ * C::LDS * 4 + 2 * (size_t)C::BK * C::LDO * 4 + 2 * C::BQ * 4;
}

// dk = scale * sum_i ds^T q,  dv = sum_i p^T do,  dbias = sum over the group's (b,h) of ds.
// dk, dv: (B,NH,N,HD)  dbias: (Gb,Gh,N,N) or null.
// Group (gb, gh) = blockIdx.y over (Gb, Gh): (Bb, Hb) when dbias is wanted, else (B, NH), so
// each block runs the B/Gb * NH/Gh heads of its group in a fixed order. grid (ceil(N/BK), Gb*Gh)
template <class T, int HD>
__global__ void __launch_bounds__(kThreads)
    flash_bwd_dkdv_kernel(T* dk, T* dv, float* dbias, const T* q, const T* k, const T* v, const T* dout,
                          const float* lse, const float* delta, const float* bias, int Bb, int Hb, int Gb, int Gh,
                          int B, int NH, int N, float scale) {
  using C = Tiles<T, HD>;
  constexpr int BQ = C::BQ, BK = C::BK, LDT = C::LDT, LDP = C::LDP, LDS = C::LDS, LDO = C::LDO;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sK = reinterpret_cast<T*>(smem);  // (BK, HD)
  T* sV = sK + BK * LDT;               // (BK, HD)
  T* sQ = sV + BK * LDT;               // (BQ, HD)
  T* sdO = sQ + BQ * LDT;              // (BQ, HD)
  T* sP = sdO + BQ * LDT;              // (BQ, BK)
  T* sdS = sP + BQ * LDP;              // (BQ, BK)
  float* sS = reinterpret_cast<float*>(sdS + BQ * LDP);  // (BQ, BK)
  float* sdP = sS + BQ * LDS;                           // (BQ, BK)
  float* sdK = sdP + BQ * LDS;                          // (BK, HD)
  float* sdV = sdK + BK * LDO;                          // (BK, HD)
  float* sLse = sdV + BK * LDO;                         // (BQ)
  float* sD = sLse + BQ;                                // (BQ)

  const int g = blockIdx.y, gb = g / Gh, gh = g % Gh;
  const int reps_b = B / Gb, reps_h = NH / Gh;
  const int k0 = blockIdx.x * BK;
  float* dbp = dbias ? dbias + (size_t)g * N * N : nullptr;

  for (int rep = 0; rep < reps_b * reps_h; ++rep) {
    const int b = Gb == 1 ? rep / reps_h : gb;
    const int h = Gh == 1 ? rep % reps_h : gh;
    const int bh = b * NH + h;
    const size_t head = (size_t)bh * N * HD;
    const float* bp = bias_plane(bias, Bb, Hb, b, h, N);

    load_rows<T, BK, HD, LDT>(sK, k + head, k0, N);
    load_rows<T, BK, HD, LDT>(sV, v + head, k0, N);
    fill_f(sdK, BK * LDO, 0.f);
    fill_f(sdV, BK * LDO, 0.f);
    for (int q0 = 0; q0 < N; q0 += BQ) {
      load_rows<T, BQ, HD, LDT>(sQ, q + head, q0, N);
      load_rows<T, BQ, HD, LDT>(sdO, dout + head, q0, N);
      load_row_stats<BQ>(sLse, sD, lse, delta, bh, q0, N);
      __syncthreads();
      mma_smem<BQ, BK, HD, false, true>(sS, LDS, sQ, LDT, sK, LDT, false);   // s = q k^T
      mma_smem<BQ, BK, HD, false, true>(sdP, LDS, sdO, LDT, sV, LDT, false);  // dp = do v^T
      __syncthreads();
      bwd_tile_ds<T, BQ, BK, LDS, LDP>(sP, sdS, sS, sdP, sLse, sD, bp, dbp, rep == 0, q0, k0, N, scale);
      __syncthreads();
      mma_smem<BK, HD, BQ, true, false>(sdV, LDO, sP, LDP, sdO, LDT, true);  // dv += p^T do
      mma_smem<BK, HD, BQ, true, false>(sdK, LDO, sdS, LDP, sQ, LDT, true);  // dk += ds^T q
      __syncthreads();
    }
    for (int e = threadIdx.x; e < BK * HD; e += kThreads) {
      const int r = e / HD, c = e % HD, gj = k0 + r;
      if (gj < N) {
        dk[head + (size_t)gj * HD + c] = from_float<T>(sdK[r * LDO + c] * scale);
        dv[head + (size_t)gj * HD + c] = from_float<T>(sdV[r * LDO + c]);
      }
    }
    __syncthreads();  // before the next head overwrites sK, sV, sdK, sdV
  }
}

// ---- launchers ----

void check_args(const char* op, const FlashBiasLayout& bl, bool has_bias, int B, int NH, int N, int HD) {
  PW_CHECK(flash_attention_cuda_supports_head_dim(HD), op, ": head dim HD = ", HD,
           " is not supported (flash attention on CUDA supports HD = 16, 32, 64, 128)");
  PW_CHECK(B >= 0 && NH >= 0 && N >= 0, op, ": negative size B = ", B, ", NH = ", NH, ", N = ", N);
  PW_CHECK((int64_t)B * NH <= 65535, op, ": B*NH = ", (int64_t)B * NH, " exceeds the grid limit 65535");
  if (has_bias)
    PW_CHECK((bl.Bb == 1 || bl.Bb == B) && (bl.Hb == 1 || bl.Hb == NH), op, ": bias of shape (", bl.Bb, ",", bl.Hb,
             ",N,N) does not broadcast to (B,NH,N,N) = (", B, ",", NH, ",N,N); Bb must be 1 or B, Hb 1 or NH");
}

void check_aligned(const char* op, const void* p, const char* name) {
  PW_CHECK(p != nullptr && reinterpret_cast<uintptr_t>(p) % 16 == 0, op, ": ", name,
           " must be a non-null 16-byte aligned device pointer");
}

template <class Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  PW_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <class T, int HD>
void forward_hd(T* o, float* lse, const T* q, const T* k, const T* v, const float* bias, FlashBiasLayout bl, int B,
                int NH, int N, float scale, cudaStream_t st) {
  constexpr int BQ = Tiles<T, HD>::BQ;
  constexpr size_t smem = fwd_smem<T, HD>();
  set_smem(flash_fwd_kernel<T, HD>, smem);
  const dim3 grid((N + BQ - 1) / BQ, B * NH);
  flash_fwd_kernel<T, HD><<<grid, kThreads, smem, st>>>(o, lse, q, k, v, bias, bl.Bb, bl.Hb, NH, N, scale);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T, int HD>
void backward_hd(T* dq, T* dk, T* dv, float* dbias, float* delta, const T* q, const T* k, const T* v, const T* o,
                 const T* dout, const float* lse, const float* bias, FlashBiasLayout bl, int B, int NH, int N,
                 float scale, cudaStream_t st) {
  using C = Tiles<T, HD>;
  const int64_t rows = (int64_t)B * NH * N;
  flash_bwd_delta_kernel<T><<<(unsigned)((rows + kWarps - 1) / kWarps), kThreads, 0, st>>>(delta, o, dout, rows, HD);
  PW_CUDA_LAUNCH_CHECK();

  constexpr size_t smem_dq = dq_smem<T, HD>();
  set_smem(flash_bwd_dq_kernel<T, HD>, smem_dq);
  flash_bwd_dq_kernel<T, HD><<<dim3((N + C::BQ - 1) / C::BQ, B * NH), kThreads, smem_dq, st>>>(
      dq, q, k, v, dout, lse, delta, bias, bl.Bb, bl.Hb, NH, N, scale);
  PW_CUDA_LAUNCH_CHECK();

  const int Gb = dbias ? bl.Bb : B, Gh = dbias ? bl.Hb : NH;
  constexpr size_t smem_kv = dkdv_smem<T, HD>();
  set_smem(flash_bwd_dkdv_kernel<T, HD>, smem_kv);
  flash_bwd_dkdv_kernel<T, HD><<<dim3((N + C::BK - 1) / C::BK, Gb * Gh), kThreads, smem_kv, st>>>(
      dk, dv, dbias, q, k, v, dout, lse, delta, bias, bl.Bb, bl.Hb, Gb, Gh, B, NH, N, scale);
  PW_CUDA_LAUNCH_CHECK();
}

// Calls f(std::integral_constant<int, HD>) for a supported head dim.
template <class F>
void dispatch_hd(int HD, F f) {
  switch (HD) {
    case 16: f(std::integral_constant<int, 16>{}); break;
    case 32: f(std::integral_constant<int, 32>{}); break;
    case 64: f(std::integral_constant<int, 64>{}); break;
    case 128: f(std::integral_constant<int, 128>{}); break;
    default: PW_FAIL("flash attention: head dim HD = ", HD, " is not supported (HD = 16, 32, 64, 128)");
  }
}

}  // namespace

bool flash_attention_cuda_supports_head_dim(int HD) { return HD == 16 || HD == 32 || HD == 64 || HD == 128; }

template <class T>
void flash_attention_forward_cuda(T* o, float* lse, const T* q, const T* k, const T* v, const float* bias,
                                  FlashBiasLayout bl, int B, int NH, int N, int HD, float scale, void* stream) {
  using D = typename cuda::DeviceType<T>::type;
  const char* op = "flash_attention_forward_cuda";
  check_args(op, bl, bias != nullptr, B, NH, N, HD);
  if ((int64_t)B * NH * N == 0) return;
  for (auto [p, name] : {std::pair<const void*, const char*>{o, "o"}, {q, "q"}, {k, "k"}, {v, "v"}})
    check_aligned(op, p, name);
  PW_CHECK(lse != nullptr, op, ": lse must not be null");
  dispatch_hd(HD, [&](auto hd) {
    forward_hd<D, decltype(hd)::value>(reinterpret_cast<D*>(o), lse, reinterpret_cast<const D*>(q),
                                       reinterpret_cast<const D*>(k), reinterpret_cast<const D*>(v), bias, bl, B,
                                       NH, N, scale, static_cast<cudaStream_t>(stream));
  });
}

template <class T>
void flash_attention_backward_cuda(T* dq, T* dk, T* dv, float* dbias, float* delta, const T* q, const T* k,
                                   const T* v, const T* o, const T* dout, const float* lse, const float* bias,
                                   FlashBiasLayout bl, int B, int NH, int N, int HD, float scale, void* stream) {
  using D = typename cuda::DeviceType<T>::type;
  const char* op = "flash_attention_backward_cuda";
  check_args(op, bl, bias != nullptr, B, NH, N, HD);
  PW_CHECK(!dbias || bias, op, ": dbias requested without a bias (its layout comes from the bias)");
  if ((int64_t)B * NH * N == 0) return;
  for (auto [p, name] : {std::pair<const void*, const char*>{dq, "dq"}, {dk, "dk"}, {dv, "dv"}, {q, "q"},
                         {k, "k"}, {v, "v"}, {o, "o"}, {dout, "dout"}})
    check_aligned(op, p, name);
  PW_CHECK(lse && delta, op, ": lse and the delta scratch must not be null");
  dispatch_hd(HD, [&](auto hd) {
    backward_hd<D, decltype(hd)::value>(reinterpret_cast<D*>(dq), reinterpret_cast<D*>(dk), reinterpret_cast<D*>(dv),
                                        dbias, delta, reinterpret_cast<const D*>(q), reinterpret_cast<const D*>(k),
                                        reinterpret_cast<const D*>(v), reinterpret_cast<const D*>(o),
                                        reinterpret_cast<const D*>(dout), lse, bias, bl, B, NH, N, scale,
                                        static_cast<cudaStream_t>(stream));
  });
}

template void flash_attention_forward_cuda<float>(float*, float*, const float*, const float*, const float*,
                                                  const float*, FlashBiasLayout, int, int, int, int, float, void*);
template void flash_attention_forward_cuda<bf16_t>(bf16_t*, float*, const bf16_t*, const bf16_t*, const bf16_t*,
                                                   const float*, FlashBiasLayout, int, int, int, int, float, void*);
template void flash_attention_backward_cuda<float>(float*, float*, float*, float*, float*, const float*, const float*,
                                                   const float*, const float*, const float*, const float*,
                                                   const float*, FlashBiasLayout, int, int, int, int, float, void*);
template void flash_attention_backward_cuda<bf16_t>(bf16_t*, bf16_t*, bf16_t*, float*, float*, const bf16_t*,
                                                    const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*,
                                                    const float*, const float*, FlashBiasLayout, int, int, int, int,
                                                    float, void*);

// ---- benchmark ----

namespace {
// x[i] = uniform(-1, 1) from a hash of (seed, i): cheap deterministic device-side fill.
template <class T>
__global__ void fill_uniform_kernel(T* x, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint32_t z = (uint32_t)i * 0x9E3779B9u ^ seed;
    z ^= z >> 16;
    z *= 0x85EBCA6Bu;
    z ^= z >> 13;
    z *= 0xC2B2AE35u;
    z ^= z >> 16;
    x[i] = from_float<T>((float)(z >> 8) * (2.f / 16777216.f) - 1.f);
  }
}

template <class T>
double bench_typed(int B, int NH, int N, int HD, int iters) {
  using D = typename cuda::DeviceType<T>::type;
  const int64_t n = (int64_t)B * NH * N * HD, rows = (int64_t)B * NH * N;
  std::vector<void*> bufs;
  auto alloc = [&](size_t bytes) {
    void* p = nullptr;
    PW_CUDA_CHECK(cudaMalloc(&p, bytes));
    bufs.push_back(p);
    return p;
  };
  T* t[9];  // q k v o do dq dk dv (+1 spare)
  for (int i = 0; i < 8; ++i) {
    t[i] = static_cast<T*>(alloc(n * sizeof(T)));
    fill_uniform_kernel<D><<<1024, 256>>>(reinterpret_cast<D*>(t[i]), n, 1234u + i);
    PW_CUDA_LAUNCH_CHECK();
  }
  float* lse = static_cast<float*>(alloc(rows * 4));
  float* delta = static_cast<float*>(alloc(rows * 4));
  const float scale = 1.f / std::sqrt((float)HD);
  auto step = [&] {
    flash_attention_forward_cuda<T>(t[3], lse, t[0], t[1], t[2], nullptr, {}, B, NH, N, HD, scale, nullptr);
    flash_attention_backward_cuda<T>(t[5], t[6], t[7], nullptr, delta, t[0], t[1], t[2], t[3], t[4], lse, nullptr,
                                     {}, B, NH, N, HD, scale, nullptr);
  };
  step();  // warm-up
  cudaEvent_t e0, e1;
  PW_CUDA_CHECK(cudaEventCreate(&e0));
  PW_CUDA_CHECK(cudaEventCreate(&e1));
  PW_CUDA_CHECK(cudaEventRecord(e0));
  for (int i = 0; i < iters; ++i) step();
  PW_CUDA_CHECK(cudaEventRecord(e1));
  PW_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0.f;
  PW_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  PW_CUDA_CHECK(cudaEventDestroy(e0));
  PW_CUDA_CHECK(cudaEventDestroy(e1));
  for (void* p : bufs) PW_CUDA_CHECK(cudaFree(p));
  const double flops = 14.0 * B * NH * (double)N * N * HD * iters;  // FA2 convention: fwd 4, bwd 2.5x
  return flops / (ms * 1e-3) / 1e12;
}
}  // namespace

double bench_flash_attention_cuda(int B, int NH, int N, int HD, bool bf16, int iters) {
  PW_CHECK(iters > 0, "bench_flash_attention_cuda: iters must be positive, got ", iters);
  return bf16 ? bench_typed<bf16_t>(B, NH, N, HD, iters) : bench_typed<float>(B, NH, N, HD, iters);
}

}  // namespace pw
