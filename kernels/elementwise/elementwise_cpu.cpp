// CPU kernels of the elementwise family (see elementwise_kernels.h): compute
// only, no graph, no device test.
#include <algorithm>
#include <cstdint>

#include "autograd/dispatch.h"
#include "kernels/elementwise/broadcast.h"
#include "kernels/elementwise/elementwise_kernels.h"
#include "kernels/elementwise/elementwise_math.h"
#include "kernels/elementwise/simd_math_cpu.h"
#include "kernels/elementwise/unary_math.h"

namespace pw {

namespace {

// ---------------------------------------------------------------------------
// Broadcast loops. Each run of the plan is one plain loop; the inputs' inner
// strides (0 or 1) are compile-time constants, so there are 2^inputs loop
// bodies, each vectorisable.

// y (= or +=) f(a, b).   y: the plan's out (contiguous); a, b: the plan's inputs 0, 1
template <bool Acc, class T, class A, class B, class F>
void bcast2_cpu(T* y, const A* a, const B* b, const BroadcastPlan& p, F f) {
  with_unit_stride(p.inner_stride[0], [&](auto SA) {
    with_unit_stride(p.inner_stride[1], [&](auto SB) {
      p.for_each_run([&](int64_t yo, const auto& o, int64_t len) {
        T* __restrict py = y + yo;
        const A* pa = a + o[0];
        const B* pb = b + o[1];
        for (int64_t j = 0; j < len; ++j) {
          T v = f(pa[j * SA], pb[j * SB]);
          if constexpr (Acc) py[j] += v;
          else py[j] = v;
        }
      });
    });
  });
}

// y (= or +=) f(a, b, c).   y: the plan's out; a, b, c: the plan's inputs 0, 1, 2
template <bool Acc, class T, class A, class B, class C, class F>
void bcast3_cpu(T* y, const A* a, const B* b, const C* c, const BroadcastPlan& p, F f) {
  with_unit_stride(p.inner_stride[0], [&](auto SA) {
    with_unit_stride(p.inner_stride[1], [&](auto SB) {
      with_unit_stride(p.inner_stride[2], [&](auto SC) {
        p.for_each_run([&](int64_t yo, const auto& o, int64_t len) {
          T* __restrict py = y + yo;
          const A* pa = a + o[0];
          const B* pb = b + o[1];
          const C* pc = c + o[2];
          for (int64_t j = 0; j < len; ++j) {
            T v = f(pa[j * SA], pb[j * SB], pc[j * SC]);
            if constexpr (Acc) py[j] += v;
            else py[j] = v;
          }
        });
      });
    });
  });
}

// dx (+)= f(a, b) summed down to dx's shape.   a: A, b: B, both broadcast to out;
// dx: a shape that broadcasts to out. When dx already has out's elements the
// sum is trivial and f writes (fresh) or accumulates straight into dx, without
// a temporary; else the sum adds into dx, zeroed first when fresh.
template <class T, class A, class B, class F>
void grad2(GradBuf dx, const Shape& out, const A* a, const Shape& as, const B* b, const Shape& bs, F f) {
  BroadcastPlan p(out, {&as, &bs});
  if (dx->numel() == p.numel) {
    if (dx.accumulate) bcast2_cpu<true>(dx.data<T>(), a, b, p, f);
    else bcast2_cpu<false>(dx.data<T>(), a, b, p, f);
    return;
  }
  Tensor t = empty(out, dx->dtype());
  bcast2_cpu<false>(t.data<T>(), a, b, p, f);
  dx.zero_if_fresh();
  sum_to_shape_cpu(*dx, t, 1.0);
}
template <class T, class A, class B, class C, class F>
void grad3(GradBuf dx, const Shape& out, const A* a, const Shape& as, const B* b, const Shape& bs, const C* c,
           const Shape& cs, F f) {
  BroadcastPlan p(out, {&as, &bs, &cs});
  if (dx->numel() == p.numel) {
    if (dx.accumulate) bcast3_cpu<true>(dx.data<T>(), a, b, c, p, f);
    else bcast3_cpu<false>(dx.data<T>(), a, b, c, p, f);
    return;
  }
  Tensor t = empty(out, dx->dtype());
  bcast3_cpu<false>(t.data<T>(), a, b, c, p, f);
  dx.zero_if_fresh();
  sum_to_shape_cpu(*dx, t, 1.0);
}

// dst = alpha * src (same shape): a fresh gradient buffer's first write.
template <class T>
void scale_copy(T* __restrict d, const T* s, double alpha, int64_t n) {
  const T a = (T)alpha;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) d[i] = a * s[i];
}

// y = f(a, b).   a: A, b: B, y: broadcast(A, B)
template <class T, class F>
void binary_loop(Tensor& y, const Tensor& a, const Tensor& b, F f) {
  T* __restrict py = y.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  if (a.shape() == b.shape()) {  // no broadcasting: one flat loop
    const int64_t n = y.numel();
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
    return;
  }
  bcast2_cpu<false>(py, pa, pb, BroadcastPlan(y.shape(), {&a.shape(), &b.shape()}), f);
}

// Calls f(C{}) with C the storage type of a condition or mask tensor (f32, f64, i64).
template <class F>
void dispatch_cond(const Tensor& c, const char* op, F&& f) {
  switch (c.dtype()) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    case DType::I64: f(int64_t{}); return;
    default: PW_FAIL(op, ": the condition must be f32, f64 or i64, got ", c.str());
  }
}

// ---------------------------------------------------------------------------
// One-input maps. Work is cut into blocks fixed by n, each a `#pragma omp simd`
// loop, so that which elements fall in a vector body or a scalar tail (which
// may round transcendentals differently, see simd_math_cpu.h) never depends on
// threads.
constexpr int64_t kMapBlock = 4096;

// y[i] = f(x[i]).   x, y: (n)
template <class T, class F>
void map_cpu(T* __restrict y, const T* __restrict x, int64_t n, F f) {
  const int64_t nb = (n + kMapBlock - 1) / kMapBlock;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i1 = std::min(n, (b + 1) * kMapBlock);
#pragma omp simd
    for (int64_t i = b * kMapBlock; i < i1; ++i) y[i] = f(x[i]);
  }
}
// dx[i] += f(s[i], dy[i]) (overwrite: dx[i] = ...), s the saved x or y.   dx, s, dy: (n)
template <class T, class F>
void map_bwd_cpu(T* __restrict dx, const T* s, const T* dy, int64_t n, F f, bool overwrite) {
  const int64_t nb = (n + kMapBlock - 1) / kMapBlock;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i0 = b * kMapBlock, i1 = std::min(n, (b + 1) * kMapBlock);
    if (overwrite) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) dx[i] = f(s[i], dy[i]);
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) dx[i] += f(s[i], dy[i]);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Binary arithmetic.

void binary_forward_cpu(Tensor& y, const Tensor& a, const Tensor& b, BinaryKind k) {
  dispatch_float(a.dtype(), binary_name(k), [&](auto tag) {
    using T = decltype(tag);
    switch (k) {
      case BinaryKind::Add: binary_loop<T>(y, a, b, [](T u, T v) { return math::add_fwd(u, v); }); break;
      case BinaryKind::Sub: binary_loop<T>(y, a, b, [](T u, T v) { return math::sub_fwd(u, v); }); break;
      case BinaryKind::Mul: binary_loop<T>(y, a, b, [](T u, T v) { return math::mul_fwd(u, v); }); break;
      case BinaryKind::Div: binary_loop<T>(y, a, b, [](T u, T v) { return math::div_fwd(u, v); }); break;
    }
  });
}

void binary_backward_cpu(GradBuf dx, int i, const Tensor& dy, const Tensor& a, const Tensor& b, BinaryKind k) {
  if (!dx) return;
  dispatch_float(dy.dtype(), binary_name(k), [&](auto tag) {
    using T = decltype(tag);
    const Shape& out = dy.shape();
    const T* pdy = dy.data<T>();
    switch (k) {
      case BinaryKind::Add:
      case BinaryKind::Sub: {  // dy (-dy for sub's b), summed down
        const double alpha = k == BinaryKind::Sub && i == 1 ? -1.0 : 1.0;
        if (!dx.accumulate && dx->numel() == dy.numel()) {
          scale_copy(dx.data<T>(), pdy, alpha, dy.numel());
          return;
        }
        dx.zero_if_fresh();
        sum_to_shape_cpu(*dx, dy, alpha);
        return;
      }
      case BinaryKind::Mul: {  // dy * other
        // A broadcast factor times a full-shape one (x * scale): the product
        // dy * x is summed as it is formed, never stored.
        const Tensor& other = i == 0 ? b : a;
        if (dx->numel() < dy.numel() && other.shape() == out) {
          dx.zero_if_fresh();
          sum_prod_to_shape_cpu(*dx, dy, other);
        } else {
          grad2<T>(dx, out, pdy, out, other.data<T>(), other.shape(),
                   [](T dv, T v) { return math::mul_bwd_a(dv, v); });
        }
        return;
      }
      case BinaryKind::Div:
        if (i == 0)
          grad2<T>(dx, out, pdy, out, b.data<T>(), b.shape(), [](T d, T vb) { return math::div_bwd_a(d, vb); });
        else
          grad3<T>(dx, out, pdy, out, a.data<T>(), a.shape(), b.data<T>(), b.shape(),
                   [](T d, T va, T vb) { return math::div_bwd_b(d, va, vb); });
        return;
    }
  });
}

// ---------------------------------------------------------------------------
// One-input maps (unary_math.h).

void unary_forward_cpu(Tensor& y, const Tensor& x, UnaryKind k, UnaryParams p) {
  dispatch_float(x.dtype(), unary_name(k), [&](auto tag) {
    using T = decltype(tag);
    const T a = (T)p.a, b = (T)p.b;
    with_unary_kind(k, [&](auto kc) {
      constexpr UnaryKind K = decltype(kc)::value;
      map_cpu(y.data<T>(), x.data<T>(), x.numel(), [a, b](T v) { return math::unary_fwd<K>(v, a, b); });
    });
  });
}

void unary_backward_cpu(GradBuf dx, const Tensor& s, const Tensor& dy, UnaryKind k, UnaryParams p) {
  dispatch_float(dy.dtype(), unary_name(k), [&](auto tag) {
    using T = decltype(tag);
    with_unary_kind(k, [&](auto kc) {
      constexpr UnaryKind K = decltype(kc)::value;
      map_bwd_cpu(dx.data<T>(), s.data<T>(), dy.data<T>(), dy.numel(),
                  [&p](T sv, T d) { return math::unary_bwd<K>(sv, d, T(p.a), T(p.b)); }, !dx.accumulate);
    });
  });
}

// ---------------------------------------------------------------------------
// Selection. The condition is read in its own dtype; nonzero (nan too) is true.

void where_forward_cpu(Tensor& y, const Tensor& c, const Tensor& a, const Tensor& b) {
  dispatch_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    dispatch_cond(c, "where", [&](auto ctag) {
      using C = decltype(ctag);
      BroadcastPlan p(y.shape(), {&c.shape(), &a.shape(), &b.shape()});
      bcast3_cpu<false>(y.data<T>(), c.data<C>(), a.data<T>(), b.data<T>(), p,
                        [](C k, T u, T v) { return k != C(0) ? u : v; });
    });
  });
}

void where_backward_cpu(GradBuf dx, int i, const Tensor& dy, const Tensor& c) {
  if (!dx) return;
  dispatch_float(dy.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    dispatch_cond(c, "where", [&](auto ctag) {
      using C = decltype(ctag);
      const Shape& out = dy.shape();
      if (i == 0) grad2<T>(dx, out, dy.data<T>(), out, c.data<C>(), c.shape(), [](T d, C k) { return k != C(0) ? d : T(0); });
      else grad2<T>(dx, out, dy.data<T>(), out, c.data<C>(), c.shape(), [](T d, C k) { return k != C(0) ? T(0) : d; });
    });
  });
}

void masked_fill_forward_cpu(Tensor& y, const Tensor& x, const Tensor& m, double value) {
  dispatch_float(x.dtype(), "masked_fill", [&](auto tag) {
    using T = decltype(tag);
    dispatch_cond(m, "masked_fill", [&](auto ctag) {
      using C = decltype(ctag);
      const T v = T(value);
      BroadcastPlan p(x.shape(), {&x.shape(), &m.shape()});
      bcast2_cpu<false>(y.data<T>(), x.data<T>(), m.data<C>(), p, [v](T u, C k) { return k != C(0) ? v : u; });
    });
  });
}

}  // namespace pw
