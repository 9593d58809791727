#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/elementwise/broadcast.h"
#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "runtime/cuda/tensor_cuda.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/elementwise_cuda.h"
#include "kernels/elementwise/elementwise_math.h"
#include "kernels/elementwise/unary_cpu.h"

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

// dx += f(a, b) summed down to dx's shape.   a: A, b: B, both broadcast to out;
// dx: a shape that broadcasts to out. When dx already has out's elements the
// sum is trivial and f accumulates straight into dx, without a temporary.
template <class T, class A, class B, class F>
void grad2_acc(Tensor& dx, const Shape& out, const A* a, const Shape& as, const B* b, const Shape& bs, F f) {
  BroadcastPlan p(out, {&as, &bs});
  if (dx.numel() == p.numel) {
    bcast2_cpu<true>(dx.data<T>(), a, b, p, f);
    return;
  }
  Tensor t = empty(out, dx.dtype());
  bcast2_cpu<false>(t.data<T>(), a, b, p, f);
  sum_to_shape_acc(dx, t);
}
template <class T, class A, class B, class C, class F>
void grad3_acc(Tensor& dx, const Shape& out, const A* a, const Shape& as, const B* b, const Shape& bs,
               const C* c, const Shape& cs, F f) {
  BroadcastPlan p(out, {&as, &bs, &cs});
  if (dx.numel() == p.numel) {
    bcast3_cpu<true>(dx.data<T>(), a, b, c, p, f);
    return;
  }
  Tensor t = empty(out, dx.dtype());
  bcast3_cpu<false>(t.data<T>(), a, b, c, p, f);
  sum_to_shape_acc(dx, t);
}

// ---------------------------------------------------------------------------
// CUDA: the same plans, collapsed into a BcastDesc (kernels/elementwise/elementwise_cuda.h).

BcastDesc bcast_desc(const char* op, const BroadcastPlan& p) {
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

// dx += kind(in0, in1[, in2]) summed down to dx's shape, on CUDA.
// in0, in1, in2: shapes that broadcast to out; dx: a shape that broadcasts to out.
template <class T>
void grad_cuda(const char* op, Tensor& dx, BcastKind k, const Shape& out, const Tensor& in0, const Tensor& in1,
               const Tensor* in2 = nullptr) {
  const BroadcastPlan p = in2 ? BroadcastPlan(out, {&in0.shape(), &in1.shape(), &in2->shape()})
                              : BroadcastPlan(out, {&in0.shape(), &in1.shape()});
  const BcastDesc d = bcast_desc(op, p);
  const T* c = in2 ? in2->data<T>() : nullptr;
  if (dx.numel() == p.numel) {  // nothing to sum: accumulate straight into dx
    bcast_cuda<T>(k, dx.data<T>(), in0.data<T>(), in1.data<T>(), c, d, 0.0, true);
    return;
  }
  Tensor t = empty(out, dx.dtype(), Device::CUDA);
  bcast_cuda<T>(k, t.data<T>(), in0.data<T>(), in1.data<T>(), c, d, 0.0, false);
  sum_to_shape_acc(dx, t);
}

// ---------------------------------------------------------------------------
// Binary arithmetic.

enum class Bin { Add, Sub, Mul, Div };
const char* bin_name(Bin k) {
  switch (k) {
    case Bin::Add: return "add";
    case Bin::Sub: return "sub";
    case Bin::Mul: return "mul";
    case Bin::Div: return "div";
  }
  return "?";
}

// y = f(a, b).   a: A, b: B, y: broadcast(A, B)
template <class T, class F>
void binary_forward_cpu(Tensor& y, const Tensor& a, const Tensor& b, F f) {
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

// dst = alpha * src (same shape): a fresh gradient buffer's first write.
void scale_copy(Tensor& dst, const Tensor& src, double alpha) {
  dispatch_float(dst.dtype(), "scale_copy", [&](auto tag) {
    using T = decltype(tag);
    T* __restrict d = dst.data<T>();
    const T* s = src.data<T>();
    const T a = (T)alpha;
    const int64_t n = dst.numel();
    if (dst.device() == Device::CUDA) {
      if constexpr (kHaveCuda) scale_copy_cuda<T>(d, s, alpha, n);
      return;
    }
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] = a * s[i];
  });
}

// y = a op b, op in {+, -, *, /}.   a: A, b: B, y: Y = broadcast(A, B)
struct BinaryFn final : Node {
  Bin kind = Bin::Add;
  Tensor a, b;  // saved for mul and div only
  Shape out;    // Y
  Shape a_shape, b_shape;
  const char* name() const override { return bin_name(kind); }
  void backward(const Tensor& dy, Grads& g) override {
    // add: da += dy, db += dy;  sub: db -= dy;  mul: da += dy*b, db += dy*a;
    // div: da += dy/b, db += -dy*a/b^2; each summed down to its input's shape.
    if (kind == Bin::Add || kind == Bin::Sub) {
      // A full-shape input's gradient is dy itself (-dy for sub's b): input 1 gets a
      // copy when its buffer is fresh, input 0 takes dy over without one. Only one of
      // them may hold dy: two buffers sharing storage would add into each other.
      const double s1 = kind == Bin::Sub ? -1.0 : 1.0;
      if (g.needs(1)) {
        bool fresh = false;
        Tensor& db = b_shape == dy.shape() ? g.out(1, fresh) : g[1];
        if (fresh) scale_copy(db, dy, s1);
        else sum_to_shape_acc(db, dy, s1);
      }
      if (g.needs(0)) {
        if (a_shape == dy.shape()) g.give(0, dy);
        else sum_to_shape_acc(g[0], dy);
      }
      return;
    }
    dispatch_float(dy.dtype(), name(), [&](auto tag) {
      using T = decltype(tag);
      const T* pdy = dy.data<T>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) {
          if (kind == Bin::Mul) {
            if (g.needs(0)) grad_cuda<T>("mul", g[0], BcastKind::Mul, out, dy, b);
            if (g.needs(1)) grad_cuda<T>("mul", g[1], BcastKind::Mul, out, dy, a);
          } else {
            if (g.needs(0)) grad_cuda<T>("div", g[0], BcastKind::Div, out, dy, b);
            if (g.needs(1)) grad_cuda<T>("div", g[1], BcastKind::DivGradB, out, dy, a, &b);
          }
        }
        return;
      }
      if (kind == Bin::Mul) {
        // A broadcast factor times a full-shape one (x * scale): the product
        // dy * x is summed as it is formed, never stored.
        auto dfactor = [&](Tensor& d, const Tensor& other, const T* po) {
          if (d.numel() < dy.numel() && other.shape() == dy.shape()) sum_prod_to_shape_acc(d, dy, other);
          else grad2_acc<T>(d, out, pdy, out, po, other.shape(), [](T dv, T v) { return math::mul_bwd_a(dv, v); });
        };
        if (g.needs(0)) dfactor(g[0], b, pb);
        if (g.needs(1)) dfactor(g[1], a, pa);
      } else {
        if (g.needs(0))
          grad2_acc<T>(g[0], out, pdy, out, pb, b.shape(), [](T d, T vb) { return math::div_bwd_a(d, vb); });
        if (g.needs(1))
          grad3_acc<T>(g[1], out, pdy, out, pa, a.shape(), pb, b.shape(),
                       [](T d, T va, T vb) { return math::div_bwd_b(d, va, vb); });
      }
    });
  }
  void release() override {
    a = Tensor();
    b = Tensor();
  }
};

Tensor binary(Bin kind, const Tensor& a, const Tensor& b) {
  const char* op = bin_name(kind);
  check_same_device(op, a, b);
  PW_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", a.str(), " vs ", b.str(),
           "; convert one operand with .to() first");
  Shape out = a.shape() == b.shape() ? a.shape() : broadcast_shapes(op, a.shape(), b.shape());
  Tensor y = empty(out, a.dtype(), a.device());
  dispatch_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (a.device() == Device::CUDA) {
      if constexpr (kHaveCuda) {
        const BcastKind k = kind == Bin::Add ? BcastKind::Add
                            : kind == Bin::Sub ? BcastKind::Sub
                            : kind == Bin::Mul ? BcastKind::Mul
                                               : BcastKind::Div;
        const BroadcastPlan p(out, {&a.shape(), &b.shape()});
        bcast_cuda<T>(k, y.data<T>(), a.data<T>(), b.data<T>(), nullptr, bcast_desc(op, p), 0.0, false);
      }
      return;
    }
    switch (kind) {
      case Bin::Add: binary_forward_cpu<T>(y, a, b, [](T u, T v) { return math::add_fwd(u, v); }); break;
      case Bin::Sub: binary_forward_cpu<T>(y, a, b, [](T u, T v) { return math::sub_fwd(u, v); }); break;
      case Bin::Mul: binary_forward_cpu<T>(y, a, b, [](T u, T v) { return math::mul_fwd(u, v); }); break;
      case Bin::Div: binary_forward_cpu<T>(y, a, b, [](T u, T v) { return math::div_fwd(u, v); }); break;
    }
  });
  if (auto n = record<BinaryFn>(y, {a, b})) {
    n->kind = kind;
    n->out = out;
    n->a_shape = a.shape();
    n->b_shape = b.shape();
    if (kind == Bin::Mul || kind == Bin::Div) {
      n->a = a;
      n->b = b;
    }
  }
  return y;
}

// ---------------------------------------------------------------------------
// With a scalar, and unary: one UnaryFn each (kernels/elementwise/unary_cpu.h).

struct AddScalarOp {  // y = x + s
  static constexpr const char* kName = "add";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::AddS;
  UnaryParams params() const { return {s, 0}; }
  double s = 0;
  template <class T> T fwd(T x) const { return math::add_fwd(x, T(s)); }
  template <class T> T bwd(T, T dy) const { return dy; }
};
struct MulScalarOp {  // y = x * s
  static constexpr const char* kName = "mul";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::MulS;
  UnaryParams params() const { return {s, 0}; }
  double s = 1;
  template <class T> T fwd(T x) const { return math::mul_fwd(x, T(s)); }
  template <class T> T bwd(T, T dy) const { return math::mul_bwd_a(dy, T(s)); }
};
struct DivScalarOp {  // y = x / s
  static constexpr const char* kName = "div";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::DivS;
  UnaryParams params() const { return {s, 0}; }
  double s = 1;
  template <class T> T fwd(T x) const { return math::div_fwd(x, T(s)); }
  template <class T> T bwd(T, T dy) const { return math::div_bwd_a(dy, T(s)); }
};
struct RSubScalarOp {  // y = s - x
  static constexpr const char* kName = "rsub";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::RSubS;
  UnaryParams params() const { return {s, 0}; }
  double s = 0;
  template <class T> T fwd(T x) const { return math::rsub_fwd(x, T(s)); }
  template <class T> T bwd(T, T dy) const { return -dy; }
};
struct RDivScalarOp {  // y = s / x
  static constexpr const char* kName = "rdiv";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::RDivS;
  UnaryParams params() const { return {s, 0}; }
  double s = 1;
  template <class T> T fwd(T x) const { return math::rdiv_fwd(x, T(s)); }
  template <class T> T bwd(T x, T dy) const { return math::rdiv_bwd(x, dy, T(s)); }
};

#define PW_UNARY_OP(Name, name, from_y, bwd_fn, kind)                       \
  struct Name {                                                             \
    static constexpr const char* kName = #name;                             \
    static constexpr bool kFromY = from_y;                                  \
    static constexpr UnaryKind kKind = UnaryKind::kind;                     \
    UnaryParams params() const { return {}; }                               \
    template <class T> T fwd(T x) const { return math::name##_fwd(x); }     \
    template <class T> T bwd(T s, T dy) const { return math::bwd_fn(s, dy); } \
  };
PW_UNARY_OP(NegOp, neg, false, neg_bwd, Neg)
PW_UNARY_OP(ExpOp, exp, true, exp_bwd_y, Exp)
PW_UNARY_OP(LogOp, log, false, log_bwd, Log)
PW_UNARY_OP(SqrtOp, sqrt, true, sqrt_bwd_y, Sqrt)
PW_UNARY_OP(RsqrtOp, rsqrt, true, rsqrt_bwd_y, Rsqrt)
PW_UNARY_OP(AbsOp, abs, false, abs_bwd, Abs)
#undef PW_UNARY_OP

struct PowOp {  // y = x^p
  static constexpr const char* kName = "pow";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::Pow;
  UnaryParams params() const { return {p, 0}; }
  double p = 1;
  template <class T> T fwd(T x) const { return math::pow_fwd(x, T(p)); }
  template <class T> T bwd(T x, T dy) const { return math::pow_bwd(x, dy, T(p)); }
};
struct ClampOp {  // y = min(max(x, lo), hi)
  static constexpr const char* kName = "clamp";
  static constexpr bool kFromY = false;
  static constexpr UnaryKind kKind = UnaryKind::Clamp;
  UnaryParams params() const { return {lo, hi}; }
  double lo = 0, hi = 0;
  template <class T> T fwd(T x) const { return math::clamp_fwd(x, T(lo), T(hi)); }
  template <class T> T bwd(T x, T dy) const { return math::clamp_bwd(x, dy, T(lo), T(hi)); }
};

// ---------------------------------------------------------------------------
// Selection.

// 1 where c is nonzero (nan counts as nonzero, as in PyTorch's bool()).   c: any shape
std::shared_ptr<std::vector<uint8_t>> nonzero_bytes(const char* op, const char* what, const Tensor& c) {
  check_cpu(op, c);
  const int64_t n = c.numel();
  auto m = std::make_shared<std::vector<uint8_t>>(n);
  uint8_t* pm = m->data();
  auto fill = [&](const auto* p) {
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) pm[i] = p[i] != 0;
  };
  switch (c.dtype()) {
    case DType::F32: fill(c.data<float>()); break;
    case DType::F64: fill(c.data<double>()); break;
    case DType::I64: fill(c.data<int64_t>()); break;
    default: PW_FAIL(op, ": ", what, " must be f32, f64 or i64, got ", c.str());
  }
  return m;
}

// y = cond ? a : b.   cond: C, a: A, b: B, y: Y = broadcast(C, A, B)
struct WhereFn final : Node {
  std::shared_ptr<std::vector<uint8_t>> cond;  // C, nonzero as 1 (cpu)
  Tensor cond_dev;                             // C, cond converted to dy's dtype (cuda)
  Shape cshape, ashape, bshape, out;
  const char* name() const override { return "where"; }
  void backward(const Tensor& dy, Grads& g) override {  // da += cond ? dy : 0, db += cond ? 0 : dy
    dispatch_float(dy.dtype(), "where", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) {
          if (g.needs(0)) grad_cuda<T>("where", g[0], BcastKind::WhereGradA, out, dy, cond_dev);
          if (g.needs(1)) grad_cuda<T>("where", g[1], BcastKind::WhereGradB, out, dy, cond_dev);
        }
        return;
      }
      const T* pdy = dy.data<T>();
      const uint8_t* pc = cond->data();
      if (g.needs(0)) grad2_acc<T>(g[0], out, pdy, out, pc, cshape, [](T d, uint8_t c) { return c ? d : T(0); });
      if (g.needs(1)) grad2_acc<T>(g[1], out, pdy, out, pc, cshape, [](T d, uint8_t c) { return c ? T(0) : d; });
    });
  }
};

// y = mask ? value : x.   x: X, mask: M (broadcasts to X), y: X
struct MaskedFillFn final : Node {
  std::shared_ptr<std::vector<uint8_t>> mask;  // M, nonzero as 1 (cpu)
  Tensor mask_dev;                             // M, mask converted to dy's dtype (cuda)
  Shape mshape, out;
  const char* name() const override { return "masked_fill"; }
  void backward(const Tensor& dy, Grads& g) override {  // dx += mask ? 0 : dy
    if (!g.needs(0)) return;
    dispatch_float(dy.dtype(), "masked_fill", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) grad_cuda<T>("masked_fill", g[0], BcastKind::WhereGradB, out, dy, mask_dev);
        return;
      }
      grad2_acc<T>(g[0], out, dy.data<T>(), out, mask->data(), mshape, [](T d, uint8_t m) { return m ? T(0) : d; });
    });
  }
};

}  // namespace

// --- binary ---
Tensor add(const Tensor& a, const Tensor& b) { return binary(Bin::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(Bin::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(Bin::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(Bin::Div, a, b); }

// --- scalar ---
Tensor add(const Tensor& x, double s) { return unary(x, AddScalarOp{s}); }
Tensor mul(const Tensor& x, double s) { return unary(x, MulScalarOp{s}); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& x, double s) { return add(x, s); }
Tensor operator+(double s, const Tensor& x) { return add(x, s); }
Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
Tensor operator-(double s, const Tensor& x) { return unary(x, RSubScalarOp{s}); }
Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
Tensor operator/(const Tensor& x, double s) { return unary(x, DivScalarOp{s}); }
Tensor operator/(double s, const Tensor& x) { return unary(x, RDivScalarOp{s}); }
Tensor operator-(const Tensor& x) { return neg(x); }

// --- unary ---
Tensor neg(const Tensor& x) { return unary(x, NegOp{}); }
Tensor exp(const Tensor& x) { return unary(x, ExpOp{}); }
Tensor log(const Tensor& x) { return unary(x, LogOp{}); }
Tensor sqrt(const Tensor& x) { return unary(x, SqrtOp{}); }
Tensor rsqrt(const Tensor& x) { return unary(x, RsqrtOp{}); }
Tensor abs(const Tensor& x) { return unary(x, AbsOp{}); }
Tensor pow(const Tensor& x, double p) { return unary(x, PowOp{p}); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  PW_CHECK(lo <= hi, "clamp: lo = ", lo, " must not exceed hi = ", hi, " (x: ", x.str(), ")");
  return unary(x, ClampOp{lo, hi});
}

// --- selection ---
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_device("where", a, b);
  check_same_device("where", cond, a);
  PW_CHECK(a.dtype() == b.dtype(), "where: dtype mismatch between a and b, ", a.str(), " vs ", b.str(),
           " (cond ", cond.str(), "); convert one with .to() first");
  const Shape out = broadcast_shapes("where", cond.shape(), broadcast_shapes("where", a.shape(), b.shape()));
  if (a.device() == Device::CUDA) {
    PW_CHECK(cond.dtype() == DType::F32 || cond.dtype() == DType::F64 || cond.dtype() == DType::I64,
             "where: cond must be f32, f64 or i64, got ", cond.str());
    const Tensor c = cond.detach().to(a.dtype());  // nonzero stays nonzero (nan too)
    Tensor y = empty(out, a.dtype(), a.device());
    dispatch_float(a.dtype(), "where", [&](auto tag) {
      using T = decltype(tag);
      if constexpr (kHaveCuda) {
        const BroadcastPlan p(out, {&cond.shape(), &a.shape(), &b.shape()});
        bcast_cuda<T>(BcastKind::Where, y.data<T>(), c.data<T>(), a.data<T>(), b.data<T>(), bcast_desc("where", p),
                      0.0, false);
      }
    });
    if (auto n = record<WhereFn>(y, {a, b})) {
      n->cond_dev = c;
      n->cshape = cond.shape();
      n->out = out;
    }
    return y;
  }
  auto c = nonzero_bytes("where", "cond", cond);
  Tensor y = empty(out, a.dtype());
  dispatch_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    BroadcastPlan p(out, {&cond.shape(), &a.shape(), &b.shape()});
    bcast3_cpu<false>(y.data<T>(), c->data(), a.data<T>(), b.data<T>(), p,
                      [](uint8_t k, T u, T v) { return k ? u : v; });
  });
  // cond is not an input of the node: it gets no gradient.
  if (auto n = record<WhereFn>(y, {a, b})) {
    n->cond = c;
    n->cshape = cond.shape();
    n->out = out;
  }
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_same_device("masked_fill", x, mask);
  bool fits = mask.dim() <= x.dim();
  for (int64_t i = 1; fits && i <= mask.dim(); ++i) {
    int64_t m = mask.shape()[mask.dim() - i];
    fits = m == 1 || m == x.shape()[x.dim() - i];
  }
  PW_CHECK(fits, "masked_fill: mask ", mask.str(), " does not broadcast to x ", x.str(),
           "; each trailing mask dim must equal x's or be 1");
  if (x.device() == Device::CUDA) {
    PW_CHECK(mask.dtype() == DType::F32 || mask.dtype() == DType::F64 || mask.dtype() == DType::I64,
             "masked_fill: mask must be f32, f64 or i64, got ", mask.str());
    const Tensor m = mask.detach().to(x.dtype());
    Tensor y = empty_like(x);
    dispatch_float(x.dtype(), "masked_fill", [&](auto tag) {
      using T = decltype(tag);
      if constexpr (kHaveCuda) {
        const BroadcastPlan p(x.shape(), {&x.shape(), &mask.shape()});
        bcast_cuda<T>(BcastKind::MaskedFill, y.data<T>(), x.data<T>(), m.data<T>(), nullptr,
                      bcast_desc("masked_fill", p), value, false);
      }
    });
    if (auto n = record<MaskedFillFn>(y, {x})) {
      n->mask_dev = m;
      n->mshape = mask.shape();
      n->out = x.shape();
    }
    return y;
  }
  auto m = nonzero_bytes("masked_fill", "mask", mask);
  Tensor y = empty_like(x);
  dispatch_float(x.dtype(), "masked_fill", [&](auto tag) {
    using T = decltype(tag);
    const T v = T(value);
    BroadcastPlan p(x.shape(), {&x.shape(), &mask.shape()});
    bcast2_cpu<false>(y.data<T>(), x.data<T>(), m->data(), p, [v](T u, uint8_t k) { return k ? v : u; });
  });
  if (auto n = record<MaskedFillFn>(y, {x})) {
    n->mask = m;
    n->mshape = mask.shape();
    n->out = x.shape();
  }
  return y;
}

}  // namespace pw
