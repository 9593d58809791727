// CUDA kernels of the elementwise family (see elementwise_kernels.h): the
// broadcasting kernels (one thread per output element, grid-stride, input
// offsets from the collapsed BcastDesc), the one-input maps (one kernel per
// UnaryKind), and the broadcast gradient sums. Formulas from elementwise_math.h
// and unary_math.h, the CPU's very same code.
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/elementwise/elementwise_kernels.h"
#include "kernels/elementwise/elementwise_math.h"
#include "kernels/elementwise/unary_math.h"
#include "kernels/reduce/reduce_kernels.h"
#include "runtime/cuda/common.cuh"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

namespace {

// What y[i] is, from the inputs' elements u = in0, v = in1, w = in2 (a nonzero test is "!= 0").
enum class BcastKind : int {
  Add,         // u + v
  Sub,         // u - v
  Mul,         // u * v            (also dy * other: mul's gradient)
  Div,         // u / v            (also dy / b: div's gradient for a)
  DivGradB,    // div_bwd_b(dy = u, a = v, b = w)
  Where,       // u != 0 ? v : w   (u: cond converted to T)
  WhereGradA,  // v != 0 ? u : 0   (u: dy, v: cond)
  WhereGradB,  // v != 0 ? 0 : u   (also masked_fill's gradient, v: mask)
  MaskedFill,  // v != 0 ? value : u   (u: x, v: mask)
};
using K = BcastKind;

__host__ __device__ constexpr bool three_inputs(K k) { return k == K::DivGradB || k == K::Where; }

template <K k, class T>
__device__ __forceinline__ T apply(T u, T v, T w, T value) {
  if constexpr (k == K::Add) return math::add_fwd(u, v);
  else if constexpr (k == K::Sub) return math::sub_fwd(u, v);
  else if constexpr (k == K::Mul) return math::mul_fwd(u, v);
  else if constexpr (k == K::Div) return math::div_fwd(u, v);
  else if constexpr (k == K::DivGradB) return math::div_bwd_b(u, v, w);
  else if constexpr (k == K::Where) return u != T(0) ? v : w;
  else if constexpr (k == K::WhereGradA) return v != T(0) ? u : T(0);
  else if constexpr (k == K::WhereGradB) return v != T(0) ? T(0) : u;
  else return v != T(0) ? value : u;
}

// y (accumulate: +=, else =) apply(a, b, c).   y: (d.numel); a, b, c: per d.stride
template <K k, class T>
__global__ void bcast_kernel(T* __restrict__ y, const T* __restrict__ a, const T* __restrict__ b,
                             const T* __restrict__ c, BcastDesc d, T value, bool accumulate) {
  PW_GRID_STRIDE(i, d.numel) {
    int64_t oa = 0, ob = 0, oc = 0, r = i;
    for (int j = d.nd - 1; j >= 0; --j) {
      const int64_t q = r / d.size[j], idx = r - q * d.size[j];
      r = q;
      oa += idx * d.stride[0][j];
      ob += idx * d.stride[1][j];
      if constexpr (three_inputs(k)) oc += idx * d.stride[2][j];
    }
    T w = T(0);
    if constexpr (three_inputs(k)) w = c[oc];
    const T v = apply<k>(a[oa], b[ob], w, value);
    if (accumulate) y[i] += v;
    else y[i] = v;
  }
}

// y[i] (= or, accumulate, +=) kind(in0, in1, in2) over the broadcast.   y: d's out; in2 may be
// null for the two-input kinds.
template <class T>
void bcast_cuda(BcastKind k, T* y, const T* in0, const T* in1, const T* in2, const BcastDesc& d, double value,
                bool accumulate) {
  if (d.numel == 0) return;
  PW_CHECK(!three_inputs(k) || in2 != nullptr, "bcast_cuda: kind ", (int)k, " needs three inputs");
  const unsigned g = cuda::grid_for(d.numel);
  switch (k) {
#define PW_KIND(name)                                                                                   \
  case K::name:                                                                                         \
    bcast_kernel<K::name, T><<<g, cuda::kBlock, 0, cuda::stream()>>>(y, in0, in1, in2, d, (T)value, accumulate); \
    break;
    PW_KIND(Add) PW_KIND(Sub) PW_KIND(Mul) PW_KIND(Div) PW_KIND(DivGradB) PW_KIND(Where) PW_KIND(WhereGradA)
    PW_KIND(WhereGradB) PW_KIND(MaskedFill)
#undef PW_KIND
    default: PW_FAIL("bcast_cuda: unknown kind ", (int)k);
  }
  PW_CUDA_LAUNCH_CHECK();
}

// dx (+)= kind(in0, in1[, in2]) summed down to dx's shape (GradBuf contract).
// in0, in1, in2: shapes that broadcast to out; dx: a shape that broadcasts to out.
template <class T>
void grad_cuda(const char* op, GradBuf dx, BcastKind k, const Shape& out, const Tensor& in0, const Tensor& in1,
               const Tensor* in2 = nullptr) {
  const BcastDesc d = in2 ? make_bcast_desc(op, out, {&in0.shape(), &in1.shape(), &in2->shape()})
                          : make_bcast_desc(op, out, {&in0.shape(), &in1.shape()});
  const T* c = in2 ? in2->data<T>() : nullptr;
  if (dx->numel() == d.numel) {  // nothing to sum: write or accumulate straight into dx
    bcast_cuda<T>(k, dx.data<T>(), in0.data<T>(), in1.data<T>(), c, d, 0.0, dx.accumulate);
    return;
  }
  Tensor t = empty(out, dx->dtype(), Device::CUDA);
  bcast_cuda<T>(k, t.data<T>(), in0.data<T>(), in1.data<T>(), c, d, 0.0, false);
  dx.zero_if_fresh();
  sum_to_shape_cuda(*dx, t, 1.0);
}

// A condition or mask as y's dtype T (nonzero stays nonzero, nan too): the kernels compare in T.
Tensor cond_as(const Tensor& c, DType t, const char* op) {
  PW_CHECK(c.dtype() == DType::F32 || c.dtype() == DType::F64 || c.dtype() == DType::I64, op,
           ": the condition must be f32, f64 or i64, got ", c.str());
  return c.dtype() == t ? c : c.detach().to(t);
}

// ---------------------------------------------------------------------------
// One-input maps.

// y[i] = fwd(x[i]).   y, x: (n)
template <UnaryKind k, class T>
__global__ void unary_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n, T a, T b) {
  PW_GRID_STRIDE(i, n) y[i] = math::unary_fwd<k>(x[i], a, b);
}
// dx[i] (+)= bwd(s[i], dy[i]).   dx, s, dy: (n)
template <UnaryKind k, class T>
__global__ void unary_bwd_kernel(T* __restrict__ dx, const T* __restrict__ s, const T* __restrict__ dy, int64_t n,
                                 T a, T b, bool accumulate) {
  if (accumulate) {
    PW_GRID_STRIDE(i, n) dx[i] += math::unary_bwd<k>(s[i], dy[i], a, b);
  } else {
    PW_GRID_STRIDE(i, n) dx[i] = math::unary_bwd<k>(s[i], dy[i], a, b);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Binary arithmetic.

void binary_forward_cuda(Tensor& y, const Tensor& a, const Tensor& b, BinaryKind k) {
  const char* op = binary_name(k);
  const BcastKind bk = k == BinaryKind::Add ? BcastKind::Add
                       : k == BinaryKind::Sub ? BcastKind::Sub
                       : k == BinaryKind::Mul ? BcastKind::Mul
                                              : BcastKind::Div;
  dispatch_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const BcastDesc d = make_bcast_desc(op, y.shape(), {&a.shape(), &b.shape()});
    bcast_cuda<T>(bk, y.data<T>(), a.data<T>(), b.data<T>(), nullptr, d, 0.0, false);
  });
}

void binary_backward_cuda(GradBuf dx, int i, const Tensor& dy, const Tensor& a, const Tensor& b, BinaryKind k) {
  if (!dx) return;
  const char* op = binary_name(k);
  dispatch_float(dy.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    switch (k) {
      case BinaryKind::Add:
      case BinaryKind::Sub: {  // dy (-dy for sub's b), summed down
        const double alpha = k == BinaryKind::Sub && i == 1 ? -1.0 : 1.0;
        if (!dx.accumulate && dx->numel() == dy.numel()) {
          scale_copy_cuda<T>(dx.data<T>(), dy.data<T>(), alpha, dy.numel());
          return;
        }
        dx.zero_if_fresh();
        sum_to_shape_cuda(*dx, dy, alpha);
        return;
      }
      case BinaryKind::Mul:
        grad_cuda<T>(op, dx, BcastKind::Mul, dy.shape(), dy, i == 0 ? b : a);
        return;
      case BinaryKind::Div:
        if (i == 0) grad_cuda<T>(op, dx, BcastKind::Div, dy.shape(), dy, b);
        else grad_cuda<T>(op, dx, BcastKind::DivGradB, dy.shape(), dy, a, &b);
        return;
    }
  });
}

// ---------------------------------------------------------------------------
// One-input maps.

void unary_forward_cuda(Tensor& y, const Tensor& x, UnaryKind k, UnaryParams p) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), unary_name(k), [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    with_unary_kind(k, [&](auto kc) {
      unary_fwd_kernel<decltype(kc)::value, T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
          y.data<T>(), x.data<T>(), n, (T)p.a, (T)p.b);
      PW_CUDA_LAUNCH_CHECK();
    });
  });
}

void unary_backward_cuda(GradBuf dx, const Tensor& s, const Tensor& dy, UnaryKind k, UnaryParams p) {
  const int64_t n = dy.numel();
  dispatch_float(dy.dtype(), unary_name(k), [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    with_unary_kind(k, [&](auto kc) {
      unary_bwd_kernel<decltype(kc)::value, T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
          dx.data<T>(), s.data<T>(), dy.data<T>(), n, (T)p.a, (T)p.b, dx.accumulate);
      PW_CUDA_LAUNCH_CHECK();
    });
  });
}

// ---------------------------------------------------------------------------
// Selection.

void where_forward_cuda(Tensor& y, const Tensor& c, const Tensor& a, const Tensor& b) {
  dispatch_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    const Tensor ct = cond_as(c, a.dtype(), "where");
    const BcastDesc d = make_bcast_desc("where", y.shape(), {&c.shape(), &a.shape(), &b.shape()});
    bcast_cuda<T>(BcastKind::Where, y.data<T>(), ct.data<T>(), a.data<T>(), b.data<T>(), d, 0.0, false);
  });
}

void where_backward_cuda(GradBuf dx, int i, const Tensor& dy, const Tensor& c) {
  if (!dx) return;
  dispatch_float(dy.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    const Tensor ct = cond_as(c, dy.dtype(), "where");
    grad_cuda<T>("where", dx, i == 0 ? BcastKind::WhereGradA : BcastKind::WhereGradB, dy.shape(), dy, ct);
  });
}

void masked_fill_forward_cuda(Tensor& y, const Tensor& x, const Tensor& m, double value) {
  dispatch_float(x.dtype(), "masked_fill", [&](auto tag) {
    using T = decltype(tag);
    const Tensor mt = cond_as(m, x.dtype(), "masked_fill");
    const BcastDesc d = make_bcast_desc("masked_fill", x.shape(), {&x.shape(), &m.shape()});
    bcast_cuda<T>(BcastKind::MaskedFill, y.data<T>(), x.data<T>(), mt.data<T>(), nullptr, d, value, false);
  });
}

// ---------------------------------------------------------------------------
// Broadcast gradient sums: one deterministic reduction over the dims where dst
// is 1 (kernels/reduce/reduce_kernels.h).

void sum_to_shape_cuda(Tensor& dst, const Tensor& src, double alpha) {
  const Shape &D = dst.shape(), &S = src.shape();
  const int64_t n = src.numel();
  if (n == 0) return;
  dispatch_float(dst.dtype(), "sum_to_shape_acc", [&](auto tag) {
    using T = decltype(tag);
    if (dst.numel() == n) {  // nothing was broadcast
      axpy_cuda<T>(dst.data<T>(), src.data<T>(), alpha, n);
      return;
    }
    std::vector<bool> red(S.size(), false);
    for (size_t i = 0; i < S.size(); ++i) {
      const size_t back = S.size() - 1 - i;
      const int64_t d = back < D.size() ? D[D.size() - 1 - back] : 1;
      red[i] = d == 1 && S[i] != 1;
    }
    const ReduceDesc rd = make_reduce_desc("sum_to_shape_acc", S, red);
    reduce_sum_cuda<T, T>(dst.data<T>(), src.data<T>(), nullptr, rd, alpha, true);
  });
}

void sum_prod_to_shape_cuda(Tensor& dst, const Tensor& a, const Tensor& b) {
  Tensor ab = empty(a.shape(), a.dtype(), Device::CUDA);  // the product is formed, then summed
  dispatch_float(dst.dtype(), "sum_prod_to_shape_acc", [&](auto tag) {
    using T = decltype(tag);
    BcastDesc d;
    d.nd = 1;
    d.size[0] = d.numel = a.numel();
    d.stride[0][0] = d.stride[1][0] = 1;
    bcast_cuda<T>(BcastKind::Mul, ab.data<T>(), a.data<T>(), b.data<T>(), nullptr, d, 0.0, false);
  });
  sum_to_shape_cuda(dst, ab, 1.0);
}

}  // namespace pw
