#include "kernels/elementwise/broadcast.h"

#include <vector>

#include "kernels/elementwise/elementwise_kernels.h"

namespace pw {

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {  // i counts from the last dim
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    PW_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " do not broadcast (dim ", (int64_t)(r - 1 - i), " of the result: ", da, " vs ", db,
             "); each pair of trailing dims must be equal or 1");
    out[r - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

BroadcastPlan::BroadcastPlan(const Shape& out, std::initializer_list<const Shape*> inputs) {
  n = (int)inputs.size();
  PW_CHECK(n >= 1 && n <= kMaxOperands, "BroadcastPlan: ", n, " inputs (1..", kMaxOperands, " supported)");
  numel = numel_of(out);
  const int r = (int)out.size();
  // Full-rank strides of every input (0 where it is broadcast), then the
  // collapse: size-1 dims go, and dim d-1 merges into d when every input steps
  // over d-1 exactly as it would over a longer d.
  std::vector<Shape> full(n, Shape(r, 0));
  int k = 0;
  for (const Shape* s : inputs) {
    PW_CHECK((int)s->size() <= r, "BroadcastPlan: input ", shape_str(*s), " has more dims than out ",
             shape_str(out));
    int64_t st = 1;
    for (int i = 0; i < (int)s->size(); ++i) {
      int d = r - 1 - i;
      int64_t sz = (*s)[s->size() - 1 - i];
      PW_CHECK(sz == out[d] || sz == 1, "BroadcastPlan: input ", shape_str(*s), " does not broadcast to ",
               shape_str(out));
      full[k][d] = sz == 1 ? 0 : st;
      st *= sz;
    }
    ++k;
  }
  for (int d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    bool merge = !size.empty();
    for (int i = 0; i < n && merge; ++i) merge = stride[i].back() == full[i][d] * out[d];
    if (merge) {
      size.back() *= out[d];
      for (int i = 0; i < n; ++i) stride[i].back() = full[i][d];
    } else {
      size.push_back(out[d]);
      for (int i = 0; i < n; ++i) stride[i].push_back(full[i][d]);
    }
  }
  if (size.empty()) {  // one element
    size.push_back(1);
    for (int i = 0; i < n; ++i) stride[i].push_back(0);
  }
  for (int i = 0; i < n; ++i) inner_stride[i] = stride[i].back();
}

namespace {

// Sum of v(off .. off+n) in a fixed order: 16 lanes of T over blocks of 512
// (which the compiler vectorises at T's full width), the block sums added in
// double. For float this keeps close to double accuracy at float speed.
template <class T, class V> double sum_contig(const V& v, int64_t off, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 512) {
    const int64_t m = std::min<int64_t>(512, n - b);
    T a[16] = {};
    int64_t j = 0;
    for (; j + 16 <= m; j += 16)
      for (int l = 0; l < 16; ++l) a[l] += v(off + b + j + l);
    for (; j < m; ++j) a[j & 15] += v(off + b + j);
    double s = 0;
    for (int l = 0; l < 16; ++l) s += (double)a[l];
    total += s;
  }
  return total;
}

// An odometer over a few dims with one stride each (the offset into src).
struct Odometer {
  Shape size, stride, idx;
  int64_t off = 0;
  void seek(int64_t i) {  // i: flat index over `size`, row-major
    idx.assign(size.size(), 0);
    off = 0;
    for (int d = (int)size.size() - 1; d >= 0; --d) {
      idx[d] = i % size[d];
      i /= size[d];
      off += idx[d] * stride[d];
    }
  }
  void next() {
    for (int d = (int)size.size() - 1; d >= 0; --d) {
      off += stride[d];
      if (++idx[d] < size[d]) return;
      off -= size[d] * stride[d];
      idx[d] = 0;
    }
  }
};

// How many fixed slices a reduction of `per_item` src elements for each of
// `items` independent outputs is cut into: enough to keep threads busy when
// there are few outputs, never dependent on the thread count (determinism).
int64_t reduction_splits(int64_t items, int64_t per_item, int64_t max_slices) {
  if (items >= 64) return 1;
  int64_t s = per_item / 32768;  // slices of at least 32K elements
  return std::max<int64_t>(1, std::min<int64_t>({s, 64, max_slices}));
}

// dst += alpha * (v summed down to D), v(i) the i-th element of a virtual src
// of shape S (src[i], or a product of two tensors that is never materialised).
template <class T, class V>
void sum_to_shape_loops(T* dst, const V& v, const Shape& D, const Shape& S, double alpha) {
  const int64_t nsrc = numel_of(S), ndst = numel_of(D);
  // Collapse to alternating runs of kept (K) and reduced (R) dims; src dims of
  // size 1 carry nothing.
  const size_t r = std::max(D.size(), S.size());
  Shape sz;
  std::vector<bool> red;
  for (size_t i = 0; i < r; ++i) {
    int64_t s = i + S.size() >= r ? S[i + S.size() - r] : 1;
    int64_t d = i + D.size() >= r ? D[i + D.size() - r] : 1;
    if (s == 1) continue;
    bool R = d == 1;
    if (!sz.empty() && red.back() == R) sz.back() *= s;
    else { sz.push_back(s); red.push_back(R); }
  }
  Shape sstride(sz.size());
  for (int64_t d = (int64_t)sz.size() - 1, st = 1; d >= 0; --d) { sstride[d] = st; st *= sz[d]; }
  const int64_t L = sz.back();
  Odometer keep, reduce;  // the outer K dims and the outer R dims, with src strides
  for (size_t d = 0; d + 1 < sz.size(); ++d) {
    Odometer& o = red[d] ? reduce : keep;
    o.size.push_back(sz[d]);
    o.stride.push_back(sstride[d]);
  }
  const int64_t nkeep = numel_of(keep.size), nred = numel_of(reduce.size);
  const bool par = nsrc > kParallelGrain;

  if (!red.back()) {
    // Inner dim kept: dst rows of L, each the sum of nred src rows, walked in
    // column chunks of CH (a double accumulator row stays in L1).
    // dst: (nkeep, L)   src: nkeep * nred rows of L, interleaved per the dims
    constexpr int64_t CH = 256;
    const int64_t nch = (L + CH - 1) / CH;
    const int64_t nsplit = reduction_splits(nkeep * nch, nred * std::min(L, CH), nred);
    std::vector<double> part(nsplit > 1 ? nsplit * ndst : 0);  // part[s][dst index]
    const int64_t items = nkeep * nch * nsplit;
#pragma omp parallel for schedule(static) firstprivate(keep, reduce) if (par)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t s = it % nsplit, ch = it / nsplit % nch, row = it / nsplit / nch;
      const int64_t j0 = ch * CH, len = std::min(CH, L - j0);
      const int64_t r0 = nred * s / nsplit, r1 = nred * (s + 1) / nsplit;
      keep.seek(row);
      reduce.seek(r0);
      double acc[CH];
      for (int64_t j = 0; j < len; ++j) acc[j] = 0;
      // Four src rows per pass over acc: a quarter of the accumulator traffic.
      int64_t q = r0;
      for (; q + 4 <= r1; q += 4) {
        int64_t o[4];
        for (int k = 0; k < 4; ++k, reduce.next()) o[k] = keep.off + reduce.off + j0;
        // Four values added in T (tiny error), the running sum kept in double.
        for (int64_t j = 0; j < len; ++j)
          acc[j] += (double)((v(o[0] + j) + v(o[1] + j)) + (v(o[2] + j) + v(o[3] + j)));
      }
      for (; q < r1; ++q, reduce.next()) {
        const int64_t o = keep.off + reduce.off + j0;
        for (int64_t j = 0; j < len; ++j) acc[j] += (double)v(o + j);
      }
      if (nsplit > 1) {
        double* out = part.data() + s * ndst + row * L + j0;
        for (int64_t j = 0; j < len; ++j) out[j] = acc[j];
      } else {
        T* out = dst + row * L + j0;
        for (int64_t j = 0; j < len; ++j) out[j] += (T)(alpha * acc[j]);
      }
    }
    if (nsplit > 1) {
#pragma omp parallel for if (ndst * nsplit > kParallelGrain)
      for (int64_t e = 0; e < ndst; ++e) {
        double a = 0;
        for (int64_t s = 0; s < nsplit; ++s) a += part[s * ndst + e];
        dst[e] += (T)(alpha * a);
      }
    }
    return;
  }

  // Inner dim reduced: each dst element sums nred contiguous src runs of L,
  // seen as one flat range [0, nred*L) cut into nsplit fixed slices.
  // dst: (nkeep)   src: per dst element, nred runs of L
  const int64_t flat = nred * L;
  const int64_t nsplit = reduction_splits(nkeep, flat, flat);
  std::vector<double> part(nsplit > 1 ? nsplit * ndst : 0);
  const int64_t items = nkeep * nsplit;
#pragma omp parallel for schedule(static) firstprivate(keep, reduce) if (par)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t s = it % nsplit, e = it / nsplit;
    int64_t f = flat * s / nsplit;
    const int64_t f1 = flat * (s + 1) / nsplit;
    keep.seek(e);
    reduce.seek(f / L);
    int64_t j = f % L;
    double acc = 0;
    while (f < f1) {
      const int64_t len = std::min(L - j, f1 - f);
      acc += sum_contig<T>(v, keep.off + reduce.off + j, len);
      f += len;
      j = 0;
      reduce.next();
    }
    if (nsplit > 1) part[s * ndst + e] = acc;
    else dst[e] += (T)(alpha * acc);
  }
  if (nsplit > 1) {
    for (int64_t e = 0; e < ndst; ++e) {
      double a = 0;
      for (int64_t s = 0; s < nsplit; ++s) a += part[s * ndst + e];
      dst[e] += (T)(alpha * a);
    }
  }
}

// dst += alpha * sum_to(v) for a virtual src v of shape S.
template <class T, class V>
void sum_to_dispatch(T* d, const V& v, const Shape& D, const Shape& S, double alpha) {
  const int64_t n = numel_of(S);
  if (n == 0) return;
  if (numel_of(D) == n) {  // nothing was broadcast: same elements, same order
    const T a = (T)alpha;
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] += alpha == 1.0 ? v(i) : a * v(i);
    return;
  }
  sum_to_shape_loops(d, v, D, S, alpha);
}

}  // namespace

void sum_to_shape_cpu(Tensor& dst, const Tensor& src, double alpha) {
  dispatch_float(dst.dtype(), "sum_to_shape_acc", [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    sum_to_dispatch(dst.data<T>(), [s](int64_t i) { return s[i]; }, dst.shape(), src.shape(), alpha);
  });
}

void sum_prod_to_shape_cpu(Tensor& dst, const Tensor& a, const Tensor& b) {
  dispatch_float(dst.dtype(), "sum_prod_to_shape_acc", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    sum_to_dispatch(dst.data<T>(), [pa, pb](int64_t i) { return pa[i] * pb[i]; }, dst.shape(), a.shape(), 1.0);
  });
}

BcastDesc make_bcast_desc(const char* op, const Shape& out, std::initializer_list<const Shape*> inputs) {
  const BroadcastPlan p(out, inputs);
  PW_CHECK((int)p.size.size() <= kMaxBcastDims, op, ": ", p.size.size(), " dims remain after collapsing the ",
           "broadcast; the CUDA kernels take at most ", kMaxBcastDims);
  BcastDesc d;
  d.nd = (int)p.size.size();
  d.numel = p.numel;
  for (int j = 0; j < d.nd; ++j) {
    d.size[j] = p.size[j];
    for (int k = 0; k < p.n && k < 3; ++k) d.stride[k][j] = p.stride[k][j];
  }
  return d;
}

}  // namespace pw
