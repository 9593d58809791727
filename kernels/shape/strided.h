// Strided box loops: the one loop behind every copying shape op and its backward.
//
// For every multi-index i over `size`:
//   a[sum_k i_k*sa_k]  = b[sum_k i_k*sb_k]      (Assign: forward copies)
//   a[sum_k i_k*sa_k] += b[sum_k i_k*sb_k]      (Accumulate: backward)
// Strides are in elements. b may have stride 0 (broadcast: expand, repeat); a may
// have stride 0 (their backward: many b elements sum into one a element).
//
// Each op is only a plan: permute is a contiguous a over b's permuted strides;
// slice, narrow, split, concat, pad and roll copy boxes at offsets; repeat and
// expand read b with stride 0. The plan drops size-1 dims and merges dims that
// are contiguous in both a and b, so most copies become runs of memcpy.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/tensor.h"

namespace pw {

// Calls f(T{}) with T = float, double or int64_t: copies move any of them.
template <class F>
void dispatch_copy(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    case DType::I64: f(int64_t{}); return;
    default: PW_FAIL(op, ": expected a f32, f64 or i64 tensor, got ", dtype_name(t));
  }
}

// Row-major strides of a contiguous tensor of shape s.
inline std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t k = s.size(); k-- > 0;) {
    st[k] = acc;
    acc *= s[k];
  }
  return st;
}

// A coalesced loop nest, outer to inner.
struct StridedPlan {
  std::vector<int64_t> size, sa, sb;  // dims that a walks (sa != 0)
  std::vector<int64_t> rsize, rsb;    // reduction dims (sa == 0): summed over b
  int64_t numel = 0;                  // size of the whole iteration space
};

// Builds the loop nest for `size` with a's strides sa and b's strides sb. The dims
// a walks are ordered by decreasing a-stride, so a (the destination) is written
// in memory order even when the caller lists dims in b's order (permute's backward).
inline StridedPlan make_plan(const Shape& size, const std::vector<int64_t>& sa,
                             const std::vector<int64_t>& sb) {
  StridedPlan p;
  p.numel = numel_of(size);
  if (p.numel == 0) return p;
  std::vector<size_t> walk;  // dims with sa != 0
  for (size_t k = 0; k < size.size(); ++k) {
    if (size[k] == 1) continue;
    if (sa[k] != 0) {
      walk.push_back(k);
    } else if (!p.rsize.empty() && p.rsb.back() == sb[k] * size[k]) {
      p.rsize.back() *= size[k];  // b walks this and the previous reduction dim as one
      p.rsb.back() = sb[k];
    } else {
      p.rsize.push_back(size[k]);
      p.rsb.push_back(sb[k]);
    }
  }
  std::stable_sort(walk.begin(), walk.end(), [&](size_t i, size_t j) { return sa[i] > sa[j]; });
  for (size_t k : walk) {
    if (!p.size.empty() && p.sa.back() == sa[k] * size[k] && p.sb.back() == sb[k] * size[k]) {
      p.size.back() *= size[k];  // contiguous in both a and b: one longer dim
      p.sa.back() = sa[k];
      p.sb.back() = sb[k];
    } else {
      p.size.push_back(size[k]);
      p.sa.push_back(sa[k]);
      p.sb.push_back(sb[k]);
    }
  }
  return p;
}

// Splits [0, n) into one contiguous range per thread (static, so the split and
// therefore every per-element result is independent of scheduling).
template <class F>
void parallel_ranges(int64_t n, bool parallel, F&& f) {
  if (!parallel || n < 2) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
    if (r0 < r1) f(r0, r1);
  }
}

namespace detail {

template <bool Acc, class T>
inline void put(T& a, T b) {
  if constexpr (Acc) a += b;
  else a = b;
}

// Offsets in a and b of the row with flat index r over dims [0, nd) of `size`.
inline void row_offsets(int64_t r, int64_t nd, const int64_t* size, const int64_t* sa,
                        const int64_t* sb, int64_t* idx, int64_t& oa, int64_t& ob) {
  oa = ob = 0;
  for (int64_t k = nd - 1; k >= 0; --k) {
    idx[k] = r % size[k];
    r /= size[k];
    oa += idx[k] * sa[k];
    ob += idx[k] * sb[k];
  }
}
// Steps the multi-index idx over dims [0, nd) to the next row, odometer-style.
inline void next_row(int64_t nd, const int64_t* size, const int64_t* sa, const int64_t* sb,
                     int64_t* idx, int64_t& oa, int64_t& ob) {
  for (int64_t k = nd - 1; k >= 0; --k) {
    oa += sa[k];
    ob += sb[k];
    if (++idx[k] < size[k]) return;
    oa -= sa[k] * size[k];
    ob -= sb[k] * size[k];
    idx[k] = 0;
  }
}

// b's innermost-contiguous dim is not a's: a transpose. Copies 32x32 tiles of the
// (j, i) plane so that both a's rows and b's rows stay in L1.
//   i = the last dim (a contiguous), j = the dim where b is contiguous.
template <bool Acc, class T>
void tiled_cpu(T* a, const T* b, const StridedPlan& p, size_t j) {
  constexpr int64_t TB = 32;
  size_t nd = p.size.size();
  int64_t ni = p.size[nd - 1], sbi = p.sb[nd - 1];
  int64_t nj = p.size[j], saj = p.sa[j];
  std::vector<int64_t> os, osa, osb;  // the other dims
  for (size_t k = 0; k + 1 < nd; ++k)
    if (k != j) {
      os.push_back(p.size[k]);
      osa.push_back(p.sa[k]);
      osb.push_back(p.sb[k]);
    }
  int64_t ond = (int64_t)os.size(), orows = numel_of(os);
  int64_t jtiles = (nj + TB - 1) / TB;
  parallel_ranges(orows * jtiles, p.numel > kParallelGrain, [&](int64_t t0, int64_t t1) {
    std::vector<int64_t> idx(ond);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t oa, ob;
      row_offsets(t / jtiles, ond, os.data(), osa.data(), osb.data(), idx.data(), oa, ob);
      int64_t jb = (t % jtiles) * TB, je = std::min(nj, jb + TB);
      for (int64_t ib = 0; ib < ni; ib += TB) {
        int64_t ie = std::min(ni, ib + TB);
        for (int64_t jj = jb; jj < je; ++jj) {
          T* ar = a + oa + jj * saj;
          const T* br = b + ob + jj;
          for (int64_t ii = ib; ii < ie; ++ii) put<Acc>(ar[ii], br[ii * sbi]);
        }
      }
    }
  });
}

// No reduction dims: every a element receives exactly one b element.
template <bool Acc, class T>
void copy_cpu(T* a, const T* b, const StridedPlan& p) {
  int64_t nd = (int64_t)p.size.size();
  if (nd == 0) {
    put<Acc>(a[0], b[0]);
    return;
  }
  int64_t ni = p.size[nd - 1], sai = p.sa[nd - 1], sbi = p.sb[nd - 1];
  if (sai == 1 && sbi != 1) {
    for (int64_t j = 0; j + 1 < nd; ++j)
      if (p.sb[j] == 1) return tiled_cpu<Acc>(a, b, p, (size_t)j);
  }
  int64_t rows = p.numel / ni;
  parallel_ranges(rows, p.numel > kParallelGrain, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(nd - 1);
    int64_t oa, ob;
    row_offsets(r0, nd - 1, p.size.data(), p.sa.data(), p.sb.data(), idx.data(), oa, ob);
    for (int64_t r = r0; r < r1; ++r) {
      T* ar = a + oa;
      const T* br = b + ob;
      if (sai == 1 && sbi == 1) {
        if constexpr (Acc) {
          for (int64_t k = 0; k < ni; ++k) ar[k] += br[k];
        } else {
          std::memcpy(ar, br, ni * sizeof(T));
        }
      } else {
        for (int64_t k = 0; k < ni; ++k) put<Acc>(ar[k * sai], br[k * sbi]);
      }
      next_row(nd - 1, p.size.data(), p.sa.data(), p.sb.data(), idx.data(), oa, ob);
    }
  });
}

// Reduction dims present (backward of expand/repeat): each a element's sum over the
// reduction dims is formed in a local buffer in a fixed order, then put into a once,
// so the result is the same for any thread count and a second backward adds
// exactly the same value again.
template <bool Acc, class T>
void reduce_cpu(T* a, const T* b, const StridedPlan& p) {
  int64_t nd = (int64_t)p.size.size();
  int64_t ni = nd ? p.size[nd - 1] : 1, sai = nd ? p.sa[nd - 1] : 0, sbi = nd ? p.sb[nd - 1] : 0;
  int64_t rows = nd ? p.numel / numel_of(p.rsize) / ni : 1;
  // a-elements per unit of work: up to 256, smaller when a is small (a bias-like
  // (C) summed over (B,N)) so that there are still enough units for the threads.
  int64_t CB = std::clamp<int64_t>(rows * ni / 64, 16, 256);
  int64_t nblk = (ni + CB - 1) / CB;
  int64_t rnd = (int64_t)p.rsize.size(), nr = numel_of(p.rsize);
  std::vector<int64_t> rsa(rnd, 0);
  parallel_ranges(rows * nblk, p.numel > kParallelGrain, [&](int64_t u0, int64_t u1) {
    std::vector<int64_t> idx(std::max<int64_t>(nd - 1, 0)), ridx(rnd);
    std::vector<T> acc(std::min(CB, ni));
    for (int64_t u = u0; u < u1; ++u) {
      int64_t oa = 0, ob = 0;
      if (nd) row_offsets(u / nblk, nd - 1, p.size.data(), p.sa.data(), p.sb.data(), idx.data(), oa, ob);
      int64_t cb = (u % nblk) * CB, len = std::min(ni, cb + CB) - cb;
      std::fill(acc.begin(), acc.begin() + len, T(0));
      std::fill(ridx.begin(), ridx.end(), 0);
      int64_t ra = 0, rb = 0;
      for (int64_t r = 0; r < nr; ++r) {
        const T* br = b + ob + rb + cb * sbi;
        for (int64_t k = 0; k < len; ++k) acc[k] += br[k * sbi];
        next_row(rnd, p.rsize.data(), rsa.data(), p.rsb.data(), ridx.data(), ra, rb);
      }
      T* ar = a + oa + cb * sai;
      for (int64_t k = 0; k < len; ++k) put<Acc>(ar[k * sai], acc[k]);
    }
  });
}

}  // namespace detail

// Runs a plan: a (op)= b over the plan's iteration space.
template <bool Acc, class T>
void strided_cpu(T* a, const T* b, const StridedPlan& p) {
  if (p.numel == 0) return;
  if (p.rsize.empty()) detail::copy_cpu<Acc>(a, b, p);
  else detail::reduce_cpu<Acc>(a, b, p);
}

}  // namespace pw
