// The activation ops: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in activation_cpu.cpp and activation_cuda.cu).
#include "kernels/activation/activation.h"

#include "autograd/op_table.h"
#include "kernels/activation/activation_kernels.h"
#include "kernels/elementwise/unary.h"

namespace pw {

namespace {

// The one-input activations: a row each, sharing the unary kernels (kernels/elementwise/unary.h).
PW_UNARY_ROW(kRelu, "relu", "activation");
PW_UNARY_ROW(kGelu, "gelu", "activation");
PW_UNARY_ROW(kGeluTanh, "gelu_tanh", "activation");
PW_UNARY_ROW(kSilu, "silu", "activation");
PW_UNARY_ROW(kSigmoid, "sigmoid", "activation");
PW_UNARY_ROW(kTanh, "tanh", "activation");
PW_UNARY_ROW(kHardswish, "hardswish", "activation");

// y = glu(x).   x: (O, 2, HI), y: (O, HI)
using GluFwd = void(Tensor& y, const Tensor& x, int64_t O, int64_t HI);
using GluBwd = void(GradBuf dx, const Tensor& x, const Tensor& dy, int64_t O, int64_t HI);
PW_OP_ROW(kGlu, "glu", "activation", GluFwd, GluBwd, glu_forward_cpu, PW_CUDA_KERNEL(glu_forward_cuda),
          glu_backward_cpu, PW_CUDA_KERNEL(glu_backward_cuda));

struct GluFn final : Node {
  Tensor x;
  int64_t O = 0, HI = 0;
  const char* name() const override { return "glu"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kGlu.bwd(dy.device())(g.buf(0), x, dy, O, HI);
  }
  void release() override { x = Tensor(); }
};

}  // namespace

Tensor relu(const Tensor& x) { return unary(kRelu, x, UnaryKind::Relu); }
Tensor gelu(const Tensor& x) { return unary(kGelu, x, UnaryKind::Gelu); }
Tensor gelu_tanh(const Tensor& x) { return unary(kGeluTanh, x, UnaryKind::GeluTanh); }
Tensor silu(const Tensor& x) { return unary(kSilu, x, UnaryKind::Silu); }
Tensor sigmoid(const Tensor& x) { return unary(kSigmoid, x, UnaryKind::Sigmoid); }
Tensor tanh(const Tensor& x) { return unary(kTanh, x, UnaryKind::Tanh); }
Tensor hardswish(const Tensor& x) { return unary(kHardswish, x, UnaryKind::Hardswish); }

Tensor glu(const Tensor& x, int64_t dim) {
  const int64_t nd = x.dim();
  PW_CHECK(dim >= -nd && dim < nd, "glu: dim ", dim, " is out of range for x ", x.str());
  const int64_t d = dim < 0 ? dim + nd : dim;
  const int64_t n2 = x.shape()[d];
  PW_CHECK(n2 % 2 == 0, "glu: dim ", dim, " of x ", x.str(), " has odd size ", n2,
           "; glu splits it into two equal halves");
  int64_t O = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) O *= x.shape()[i];
  for (int64_t i = d + 1; i < nd; ++i) inner *= x.shape()[i];
  const int64_t HI = n2 / 2 * inner;
  Shape ys = x.shape();
  ys[d] = n2 / 2;
  Tensor y = empty(ys, x.dtype(), x.device());
  kGlu.fwd(x.device())(y, x, O, HI);
  if (auto n = record<GluFn>(y, {x})) {
    n->x = x;
    n->O = O;
    n->HI = HI;
  }
  return y;
}

}  // namespace pw
