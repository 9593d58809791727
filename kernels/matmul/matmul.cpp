// matmul, linear and linear_gelu: public functions, autograd nodes and dispatch
// rows (device-agnostic; the kernels are in matmul_cpu.cpp and matmul_cuda.cu).
#include "kernels/matmul/matmul.h"

#include <algorithm>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/matmul/matmul_kernels.h"

namespace pw {

namespace {

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b) {
  MatmulPlan p;
  p.M = a.size(-2);
  p.K = a.size(-1);
  p.N = b.size(-1);
  PW_CHECK(b.size(-2) == p.K, "matmul: inner dimensions differ, a ", a.str(), " @ b ", b.str(),
           "; a's last dim must equal b's second-to-last");
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  size_t nd = std::max(ab.size(), bb.size());
  ab.insert(ab.begin(), nd - ab.size(), 1);
  bb.insert(bb.begin(), nd - bb.size(), 1);
  p.out_batch.resize(nd);
  for (size_t d = 0; d < nd; ++d) {
    PW_CHECK(ab[d] == bb[d] || ab[d] == 1 || bb[d] == 1, "matmul: batch dims of a ", a.str(), " and b ", b.str(),
             " do not broadcast (", ab[d], " vs ", bb[d], " at batch dim ", d, ")");
    p.out_batch[d] = ab[d] == 1 ? bb[d] : ab[d];
  }
  p.a_bn = numel_of(ab);
  p.b_bn = numel_of(bb);
  p.out_bn = numel_of(p.out_batch);
  // Slice strides of a and b per batch dim; 0 where the dim broadcasts.
  std::vector<int64_t> sa(nd, 0), sb(nd, 0);
  for (int64_t d = (int64_t)nd - 1, ra = 1, rb = 1; d >= 0; --d) {
    if (ab[d] != 1) sa[d] = ra;
    if (bb[d] != 1) sb[d] = rb;
    ra *= ab[d];
    rb *= bb[d];
  }
  // Odometer over the output batch index.
  p.ia.resize(p.out_bn);
  p.ib.resize(p.out_bn);
  std::vector<int64_t> idx(nd, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t i = 0; i < p.out_bn; ++i) {
    p.ia[i] = oa;
    p.ib[i] = ob;
    for (int64_t d = (int64_t)nd - 1; d >= 0; --d) {
      oa += sa[d];
      ob += sb[d];
      if (++idx[d] < p.out_batch[d]) break;
      oa -= sa[d] * idx[d];
      ob -= sb[d] * idx[d];
      idx[d] = 0;
    }
  }
  return p;
}

// y = a @ b.   a: (a_bn,M,K)  b: (b_bn,K,N)  y: (out_bn,M,N)
using MatmulFwd = void(Tensor& y, const Tensor& a, const Tensor& b, const MatmulPlan& p);
using MatmulBwd = void(GradBuf da, GradBuf db, const Tensor& dy, const Tensor& a, const Tensor& b,
                       const MatmulPlan& p);
PW_OP_ROW(kMatmul, "matmul", "matmul", MatmulFwd, MatmulBwd, matmul_forward_cpu, PW_CUDA_KERNEL(matmul_forward_cuda),
          matmul_backward_cpu, PW_CUDA_KERNEL(matmul_backward_cuda));
// y = x @ w^T + b.   x: (R,Din)  w: (Dout,Din)  b: (Dout) or undefined  y: (R,Dout)
using LinearFwd = void(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R, int64_t Din,
                       int64_t Dout);
using LinearBwd = void(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                       int64_t R, int64_t Din, int64_t Dout);
PW_OP_ROW(kLinear, "linear", "matmul", LinearFwd, LinearBwd, linear_forward_cpu, PW_CUDA_KERNEL(linear_forward_cuda),
          linear_backward_cpu, PW_CUDA_KERNEL(linear_backward_cuda));
// y = gelu_tanh(pre), pre = x @ w^T + b.   x: (R,Din)  w: (Dout,Din)  b: (Dout)  y, pre: (R,Dout)
using LinearGeluFwd = void(Tensor& y, Tensor& pre, const Tensor& x, const Tensor& w, const Tensor& b, int64_t R,
                           int64_t Din, int64_t Dout);
using LinearGeluBwd = void(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& pre, const Tensor& x,
                           const Tensor& w, int64_t R, int64_t Din, int64_t Dout);
PW_OP_ROW(kLinearGelu, "linear_gelu", "matmul", LinearGeluFwd, LinearGeluBwd, linear_gelu_forward_cpu,
          PW_CUDA_KERNEL(linear_gelu_forward_cuda), linear_gelu_backward_cpu,
          PW_CUDA_KERNEL(linear_gelu_backward_cuda));

// y = a @ b.   a: (...,M,K)  b: (...,K,N)  y: (out_batch...,M,N)
struct MatmulFn final : Node {
  Tensor a, b;
  MatmulPlan plan;
  const char* name() const override { return "matmul"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0) || g.needs(1)) kMatmul.bwd(dy.device())(g.buf(0), g.buf(1), dy, a, b, plan);
  }
  void release() override {
    a = Tensor();
    b = Tensor();
  }
};

// y = x @ w^T + b.   x: (R,Din) viewed from (...,Din)  w: (Dout,Din)  b: (Dout)  y: (R,Dout)
struct LinearFn final : Node {
  Tensor x, w;
  int64_t R = 0, Din = 0, Dout = 0;
  const char* name() const override { return "linear"; }
  void backward(const Tensor& dy, Grads& g) override {
    kLinear.bwd(dy.device())(g.buf(0), g.buf(1), g.buf(2), dy, x, w, R, Din, Dout);
  }
  void release() override {
    x = Tensor();
    w = Tensor();
  }
};

// y = gelu_tanh(pre), pre = x @ w^T + b.   x: (R,Din)  w: (Dout,Din)  b: (Dout)  pre, y: (R,Dout)
// Saves pre (an intermediate, not the output, so no cycle).
struct LinearGeluFn final : Node {
  Tensor x, w, pre;
  int64_t R = 0, Din = 0, Dout = 0;
  const char* name() const override { return "linear_gelu"; }
  void backward(const Tensor& dy, Grads& g) override {
    kLinearGelu.bwd(dy.device())(g.buf(0), g.buf(1), g.buf(2), dy, pre, x, w, R, Din, Dout);
  }
  void release() override {
    x = Tensor();
    w = Tensor();
    pre = Tensor();
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device("matmul", a, b);
  PW_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got a ", a.str(),
           " and b ", b.str());
  check_same_dtype("matmul", a, b);
  if (a.dim() == 1 || b.dim() == 1) {  // vectors become (1,K) / (K,1); that dim leaves the result
    int64_t Kb = b.dim() == 1 ? b.size(0) : b.size(-2);
    PW_CHECK(a.size(-1) == Kb, "matmul: inner dimensions differ, a ", a.str(), " @ b ", b.str(),
             "; a's last dim must equal b's ", b.dim() == 1 ? "only" : "second-to-last", " dim");
    Tensor a2 = a.dim() == 1 ? a.reshape({1, a.size(0)}) : a;
    Tensor b2 = b.dim() == 1 ? b.reshape({b.size(0), 1}) : b;
    Tensor y = matmul(a2, b2);
    Shape s = y.shape();
    if (b.dim() == 1) s.pop_back();
    if (a.dim() == 1) s.erase(s.end() - (b.dim() == 1 ? 1 : 2));
    return y.reshape(s);
  }
  MatmulPlan p = plan_matmul(a, b);
  Shape ys = p.out_batch;
  ys.push_back(p.M);
  ys.push_back(p.N);
  Tensor y = empty(ys, a.dtype(), a.device());
  kMatmul.fwd(a.device())(y, a, b, p);
  if (auto n = record<MatmulFn>(y, {a, b})) {
    n->a = a;
    n->b = b;
    n->plan = std::move(p);
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_same_device("linear", x, w);
  PW_CHECK(w.dim() == 2, "linear: weight must be (Dout,Din), got ", w.str(), " (x is ", x.str(), ")");
  PW_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: x ", x.str(), " must end in Din = ", w.size(1),
           " to match weight ", w.str());
  check_same_dtype("linear", x, w);
  const int64_t Din = w.size(1), Dout = w.size(0);
  if (b.defined()) {
    check_same_device("linear", x, b);
    check_same_dtype("linear", x, b);
    PW_CHECK(b.dim() == 1 && b.size(0) == Dout, "linear: bias must be (Dout) = (", Dout, "), got ", b.str(),
             " for weight ", w.str());
  }
  Shape ys = x.shape();
  ys.back() = Dout;
  int64_t R = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor y = empty(ys, x.dtype(), x.device());
  kLinear.fwd(x.device())(y, x, w, b, R, Din, Dout);
  if (auto n = record<LinearFn>(y, {x, w, b})) {
    n->x = x;
    n->w = w;
    n->R = R;
    n->Din = Din;
    n->Dout = Dout;
  }
  return y;
}

Tensor linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_same_device("linear_gelu", x, w);
  PW_CHECK(w.dim() == 2, "linear_gelu: weight must be (Dout,Din), got ", w.str(), " (x is ", x.str(), ")");
  PW_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear_gelu: x ", x.str(), " must end in Din = ", w.size(1),
           " to match weight ", w.str());
  check_same_dtype("linear_gelu", x, w);
  const int64_t Din = w.size(1), Dout = w.size(0);
  PW_CHECK(b.defined(), "linear_gelu: needs a bias (Dout) = (", Dout, "); use gelu_tanh(linear(x, w)) without one");
  check_same_device("linear_gelu", x, b);
  check_same_dtype("linear_gelu", x, b);
  PW_CHECK(b.dim() == 1 && b.size(0) == Dout, "linear_gelu: bias must be (Dout) = (", Dout, "), got ", b.str(),
           " for weight ", w.str());
  Shape ys = x.shape();
  ys.back() = Dout;
  const int64_t R = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor y = empty(ys, x.dtype(), x.device()), pre = empty(ys, x.dtype(), x.device());
  kLinearGelu.fwd(x.device())(y, pre, x, w, b, R, Din, Dout);
  if (auto n = record<LinearGeluFn>(y, {x, w, b})) {
    n->x = x;
    n->w = w;
    n->pre = pre;
    n->R = R;
    n->Din = Din;
    n->Dout = Dout;
  }
  return y;
}

}  // namespace pw
