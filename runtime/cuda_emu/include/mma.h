// Stand-in for <mma.h> (nvcuda::wmma): every lane holds the whole tile (the per-lane
// register layout of real fragments is not modelled), mma_sync computes in fp32.
// Checks the documented preconditions: 256-bit aligned pointers, ldm a multiple of 16 bytes,
// and (via a warp rendezvous in mma_sync) that all 32 lanes take part.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "../emu.h"
#include "cuda_bf16.h"

namespace emu {
[[noreturn]] void fatal(const char* fmt, ...);
}

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int R = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int C = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = R * C;
  T x[R * C];  // logical row-major tile (NOT the hardware per-lane layout)
};

namespace detail {
template <class T>
inline void check_ptr(const T* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
    emu::fatal("wmma::%s: pointer %p is not 256-bit aligned", what, (const void*)p);
  if ((ldm * sizeof(T)) % 16 != 0) emu::fatal("wmma::%s: ldm = %u is not a multiple of 16 bytes", what, ldm);
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class L, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, const V& v) {
  for (auto& e : f.x) e = T(v);
}

template <class Use, int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same_v<Use, accumulator>, "accumulator loads take a layout");
  detail::check_ptr(p, ldm, "load_matrix_sync");
  using F = fragment<Use, M, N, K, T, L>;
  for (int r = 0; r < F::R; ++r)
    for (int c = 0; c < F::C; ++c)
      f.x[r * F::C + c] = std::is_same_v<L, row_major> ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void>& f, const T* p, unsigned ldm, layout_t l) {
  detail::check_ptr(p, ldm, "load_matrix_sync");
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.x[r * N + c] = l == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T, void>& f, unsigned ldm, layout_t l) {
  detail::check_ptr(p, ldm, "store_matrix_sync");
  // Each lane stores its own share (as the hardware does), so lanes never write the same element.
  for (int i = emu::cur->lane; i < M * N; i += 32) {
    const int r = i / N, c = i % N;
    (l == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]) = f.x[i];
  }
}

template <int M, int N, int K, class TA, class LA, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC, void>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TA, LB>& b, const fragment<accumulator, M, N, K, TC, void>& c) {
  emu::syncwarp(0xffffffffu);  // warp-collective: every lane must arrive
  TC out[M * N];
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float s = (float)c.x[m * N + n];
      for (int k = 0; k < K; ++k) s += (float)a.x[m * K + k] * (float)b.x[k * N + n];
      out[m * N + n] = (TC)s;
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = out[i];
}

}  // namespace wmma
}  // namespace nvcuda
