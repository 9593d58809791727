// The elementwise ops: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in elementwise_cpu.cpp, broadcast.cpp's
// sums, and elementwise_cuda.cu). The one-input ops run through unary() (unary.h).
#include "kernels/elementwise/elementwise.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/elementwise/broadcast.h"
#include "kernels/elementwise/elementwise_kernels.h"
#include "kernels/elementwise/unary.h"

namespace pw {

namespace {

// --- rows ---

// y = a op b.   a: A, b: B, y: broadcast(A, B)
using BinaryFwd = void(Tensor& y, const Tensor& a, const Tensor& b, BinaryKind k);
// dx (+)= d(input i), summed down to its shape.   dy: broadcast(A, B); a, b: mul and div only
using BinaryBwd = void(GradBuf dx, int i, const Tensor& dy, const Tensor& a, const Tensor& b, BinaryKind k);
using BinaryRow = OpRow<BinaryFwd, BinaryBwd>;
#define PW_BINARY_ROW(var, name)                                                                              \
  PW_OP_ROW(var, name, "elementwise", BinaryFwd, BinaryBwd, binary_forward_cpu,                              \
            PW_CUDA_KERNEL(binary_forward_cuda), binary_backward_cpu, PW_CUDA_KERNEL(binary_backward_cuda))
PW_BINARY_ROW(kAdd, "add");
PW_BINARY_ROW(kSub, "sub");
PW_BINARY_ROW(kMul, "mul");
PW_BINARY_ROW(kDiv, "div");
#undef PW_BINARY_ROW

PW_UNARY_ROW(kAddScalar, "add_scalar", "elementwise");    // x + s
PW_UNARY_ROW(kMulScalar, "mul_scalar", "elementwise");    // x * s
PW_UNARY_ROW(kDivScalar, "div_scalar", "elementwise");    // x / s
PW_UNARY_ROW(kRSubScalar, "rsub_scalar", "elementwise");  // s - x
PW_UNARY_ROW(kRDivScalar, "rdiv_scalar", "elementwise");  // s / x
PW_UNARY_ROW(kNeg, "neg", "elementwise");
PW_UNARY_ROW(kExp, "exp", "elementwise");
PW_UNARY_ROW(kLog, "log", "elementwise");
PW_UNARY_ROW(kSqrt, "sqrt", "elementwise");
PW_UNARY_ROW(kRsqrt, "rsqrt", "elementwise");
PW_UNARY_ROW(kAbs, "abs", "elementwise");
PW_UNARY_ROW(kPow, "pow", "elementwise");
PW_UNARY_ROW(kClamp, "clamp", "elementwise");

// y = c ? a : b.   c: C (f32, f64 or i64, nonzero = true), a: A, b: B, y: broadcast(C, A, B)
using WhereFwd = void(Tensor& y, const Tensor& c, const Tensor& a, const Tensor& b);
// dx (+)= i == 0 ? (c ? dy : 0) : (c ? 0 : dy), summed down to dx's shape.
using WhereBwd = void(GradBuf dx, int i, const Tensor& dy, const Tensor& c);
PW_OP_ROW(kWhere, "where", "elementwise", WhereFwd, WhereBwd, where_forward_cpu, PW_CUDA_KERNEL(where_forward_cuda),
          where_backward_cpu, PW_CUDA_KERNEL(where_backward_cuda));
// y = m ? value : x.   x: X, m: M (broadcasts to X); its gradient is where's for input 1.
using MaskedFillFwd = void(Tensor& y, const Tensor& x, const Tensor& m, double value);
PW_OP_ROW(kMaskedFill, "masked_fill", "elementwise", MaskedFillFwd, WhereBwd, masked_fill_forward_cpu,
          PW_CUDA_KERNEL(masked_fill_forward_cuda), where_backward_cpu, PW_CUDA_KERNEL(where_backward_cuda));

// dst += alpha * src summed down to dst's shape (no gradient: the sums are backward helpers).
using SumToShape = void(Tensor& dst, const Tensor& src, double alpha);
PW_OP_ROW_NOGRAD(kSumToShape, "sum_to_shape", "elementwise", SumToShape, sum_to_shape_cpu,
                 PW_CUDA_KERNEL(sum_to_shape_cuda));
// dst += a * b summed down to dst's shape.
using SumProdToShape = void(Tensor& dst, const Tensor& a, const Tensor& b);
PW_OP_ROW_NOGRAD(kSumProdToShape, "sum_prod_to_shape", "elementwise", SumProdToShape, sum_prod_to_shape_cpu,
                 PW_CUDA_KERNEL(sum_prod_to_shape_cuda));

// --- nodes ---

// y = op(x).   x: any shape, y: same shape.
struct UnaryFn final : Node {
  const UnaryRow* row = nullptr;
  UnaryKind kind = UnaryKind::Neg;
  UnaryParams p;
  Tensor saved;  // x, or y.detach() where unary_saves_y(kind)
  const char* name() const override { return unary_name(kind); }
  void backward(const Tensor& dy, Grads& g) override {  // dx (+)= unary_bwd(saved, dy)
    if (g.needs(0)) row->bwd(dy.device())(g.buf(0), saved, dy, kind, p);
  }
  void release() override { saved = Tensor(); }
};

// y = a op b, op in {+, -, *, /}.   a: A, b: B, y: Y = broadcast(A, B)
struct BinaryFn final : Node {
  const BinaryRow* row = nullptr;
  BinaryKind kind = BinaryKind::Add;
  Tensor a, b;  // saved for mul and div only
  Shape a_shape;
  const char* name() const override { return binary_name(kind); }
  void backward(const Tensor& dy, Grads& g) override {
    // add: da += dy, db += dy;  sub: db -= dy;  mul: da += dy*b, db += dy*a;
    // div: da += dy/b, db += -dy*a/b^2; each summed down to its input's shape.
    BinaryBwd& bwd = row->bwd(dy.device());
    if (kind == BinaryKind::Add || kind == BinaryKind::Sub) {
      // A full-shape a's gradient is dy itself: input 0 takes dy over without a
      // copy, after input 1 is done. Only one of them may hold dy: two buffers
      // sharing storage would add into each other.
      if (g.needs(1)) bwd(g.buf(1), 1, dy, a, b, kind);
      if (g.needs(0)) {
        if (a_shape == dy.shape()) g.give(0, dy);
        else bwd(g.buf(0), 0, dy, a, b, kind);
      }
      return;
    }
    // One input at a time: for x * x both are one buffer, written by the first, added to by the second.
    if (g.needs(0)) bwd(g.buf(0), 0, dy, a, b, kind);
    if (g.needs(1)) bwd(g.buf(1), 1, dy, a, b, kind);
  }
  void release() override {
    a = Tensor();
    b = Tensor();
  }
};

// y = cond ? a : b.   cond: C, a: A, b: B, y: broadcast(C, A, B)
struct WhereFn final : Node {
  Tensor cond;  // C, its own dtype; gets no gradient
  const char* name() const override { return "where"; }
  void backward(const Tensor& dy, Grads& g) override {  // da (+)= cond ? dy : 0, db (+)= cond ? 0 : dy
    if (g.needs(0)) kWhere.bwd(dy.device())(g.buf(0), 0, dy, cond);
    if (g.needs(1)) kWhere.bwd(dy.device())(g.buf(1), 1, dy, cond);
  }
  void release() override { cond = Tensor(); }
};

// y = mask ? value : x.   x: X, mask: M (broadcasts to X), y: X
struct MaskedFillFn final : Node {
  Tensor mask;  // M, its own dtype
  const char* name() const override { return "masked_fill"; }
  void backward(const Tensor& dy, Grads& g) override {  // dx (+)= mask ? 0 : dy (where's for input 1)
    if (g.needs(0)) kMaskedFill.bwd(dy.device())(g.buf(0), 1, dy, mask);
  }
  void release() override { mask = Tensor(); }
};

Tensor binary(const BinaryRow& row, BinaryKind kind, const Tensor& a, const Tensor& b) {
  const char* op = binary_name(kind);
  check_same_device(op, a, b);
  PW_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", a.str(), " vs ", b.str(),
           "; convert one operand with .to() first");
  Shape out = a.shape() == b.shape() ? a.shape() : broadcast_shapes(op, a.shape(), b.shape());
  Tensor y = empty(out, a.dtype(), a.device());
  row.fwd(a.device())(y, a, b, kind);
  if (auto n = record<BinaryFn>(y, {a, b})) {
    n->row = &row;
    n->kind = kind;
    n->a_shape = a.shape();
    if (kind == BinaryKind::Mul || kind == BinaryKind::Div) {
      n->a = a;
      n->b = b;
    }
  }
  return y;
}

void check_cond_dtype(const char* op, const char* what, const Tensor& c) {
  PW_CHECK(c.dtype() == DType::F32 || c.dtype() == DType::F64 || c.dtype() == DType::I64, op, ": ", what,
           " must be f32, f64 or i64, got ", c.str());
}

// Checks that dst's shape broadcasts to S (missing leading dims count as 1).
void check_sum_to(const char* op, const Tensor& dst, const Tensor& src) {
  check_same_dtype(op, dst, src);
  check_same_device(op, dst, src);
  const Shape &D = dst.shape(), &S = src.shape();
  const size_t r = std::max(D.size(), S.size());
  for (size_t i = 0; i < r; ++i) {
    int64_t s = i + S.size() >= r ? S[i + S.size() - r] : 1;
    int64_t d = i + D.size() >= r ? D[i + D.size() - r] : 1;
    PW_CHECK(d == s || d == 1, op, ": cannot sum ", src.str(), " down to ", dst.str(),
             "; every dim of dst must equal src's or be 1");
  }
}

}  // namespace

Tensor unary(const UnaryRow& row, const Tensor& x, UnaryKind k, UnaryParams p) {
  Tensor y = empty_like(x);
  row.fwd(x.device())(y, x, k, p);
  if (auto n = record<UnaryFn>(y, {x})) {
    n->row = &row;
    n->kind = k;
    n->p = p;
    n->saved = unary_saves_y(k) ? y.detach() : x;
  }
  return y;
}

// --- binary ---
Tensor add(const Tensor& a, const Tensor& b) { return binary(kAdd, BinaryKind::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(kSub, BinaryKind::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(kMul, BinaryKind::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(kDiv, BinaryKind::Div, a, b); }

// --- scalar ---
Tensor add(const Tensor& x, double s) { return unary(kAddScalar, x, UnaryKind::AddS, {s, 0}); }
Tensor mul(const Tensor& x, double s) { return unary(kMulScalar, x, UnaryKind::MulS, {s, 0}); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& x, double s) { return add(x, s); }
Tensor operator+(double s, const Tensor& x) { return add(x, s); }
Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
Tensor operator-(double s, const Tensor& x) { return unary(kRSubScalar, x, UnaryKind::RSubS, {s, 0}); }
Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
Tensor operator/(const Tensor& x, double s) { return unary(kDivScalar, x, UnaryKind::DivS, {s, 0}); }
Tensor operator/(double s, const Tensor& x) { return unary(kRDivScalar, x, UnaryKind::RDivS, {s, 0}); }
Tensor operator-(const Tensor& x) { return neg(x); }

// --- unary ---
Tensor neg(const Tensor& x) { return unary(kNeg, x, UnaryKind::Neg); }
Tensor exp(const Tensor& x) { return unary(kExp, x, UnaryKind::Exp); }
Tensor log(const Tensor& x) { return unary(kLog, x, UnaryKind::Log); }
Tensor sqrt(const Tensor& x) { return unary(kSqrt, x, UnaryKind::Sqrt); }
Tensor rsqrt(const Tensor& x) { return unary(kRsqrt, x, UnaryKind::Rsqrt); }
Tensor abs(const Tensor& x) { return unary(kAbs, x, UnaryKind::Abs); }
Tensor pow(const Tensor& x, double p) { return unary(kPow, x, UnaryKind::Pow, {p, 0}); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  PW_CHECK(lo <= hi, "clamp: lo = ", lo, " must not exceed hi = ", hi, " (x: ", x.str(), ")");
  return unary(kClamp, x, UnaryKind::Clamp, {lo, hi});
}

// --- selection ---
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_device("where", a, b);
  check_same_device("where", cond, a);
  PW_CHECK(a.dtype() == b.dtype(), "where: dtype mismatch between a and b, ", a.str(), " vs ", b.str(),
           " (cond ", cond.str(), "); convert one with .to() first");
  const Shape out = broadcast_shapes("where", cond.shape(), broadcast_shapes("where", a.shape(), b.shape()));
  check_cond_dtype("where", "cond", cond);
  Tensor y = empty(out, a.dtype(), a.device());
  kWhere.fwd(a.device())(y, cond, a, b);
  // cond is not an input of the node: it gets no gradient.
  if (auto n = record<WhereFn>(y, {a, b})) n->cond = cond.detach();
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
  check_cond_dtype("masked_fill", "mask", mask);
  Tensor y = empty_like(x);
  kMaskedFill.fwd(x.device())(y, x, mask, value);
  if (auto n = record<MaskedFillFn>(y, {x})) n->mask = mask.detach();
  return y;
}

// --- broadcast gradient sums (broadcast.h) ---
void sum_to_shape_acc(Tensor& dst, const Tensor& src) { sum_to_shape_acc(dst, src, 1.0); }

void sum_to_shape_acc(Tensor& dst, const Tensor& src, double alpha) {
  check_sum_to("sum_to_shape_acc", dst, src);
  kSumToShape.fwd(dst.device())(dst, src, alpha);
}

void sum_prod_to_shape_acc(Tensor& dst, const Tensor& a, const Tensor& b) {
  const char* op = "sum_prod_to_shape_acc";
  PW_CHECK(a.shape() == b.shape(), op, ": factors ", a.str(), " and ", b.str(), " must have one shape");
  check_same_dtype(op, a, b);
  check_sum_to(op, dst, a);
  check_same_device(op, a, b);
  kSumProdToShape.fwd(dst.device())(dst, a, b);
}

}  // namespace pw
