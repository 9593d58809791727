#include <algorithm>
#include <cmath>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/activation/activation.h"
#include "kernels/activation/activation_cuda.h"
#include "kernels/activation/activation_math.h"
#include "kernels/elementwise/unary_cpu.h"

namespace pw {

namespace {

// One op struct per activation; UnaryFn (kernels/elementwise/unary_cpu.h) runs
// the loops and the backward: dx += bwd(saved, dy), saved = y if kFromY else x.
#define PW_ACTIVATION_OP(Name, name, from_y, bwd_fn, kind)                    \
  struct Name {                                                               \
    static constexpr const char* kName = #name;                               \
    static constexpr bool kFromY = from_y;                                    \
    static constexpr UnaryKind kKind = UnaryKind::kind;                       \
    UnaryParams params() const { return {}; }                                 \
    template <class T> T fwd(T x) const { return math::name##_fwd(x); }       \
    template <class T> T bwd(T s, T dy) const { return math::bwd_fn(s, dy); } \
  };
PW_ACTIVATION_OP(ReluOp, relu, false, relu_bwd, Relu)
PW_ACTIVATION_OP(GeluOp, gelu, false, gelu_bwd, Gelu)
PW_ACTIVATION_OP(GeluTanhOp, gelu_tanh, false, gelu_tanh_bwd, GeluTanh)
PW_ACTIVATION_OP(SiluOp, silu, false, silu_bwd, Silu)
PW_ACTIVATION_OP(SigmoidOp, sigmoid, true, sigmoid_bwd_y, Sigmoid)
PW_ACTIVATION_OP(TanhOp, tanh, true, tanh_bwd_y, Tanh)
PW_ACTIVATION_OP(HardswishOp, hardswish, false, hardswish_bwd, Hardswish)
#undef PW_ACTIVATION_OP

// x seen as (O, 2, HI): the halves a = x[:, 0] and b = x[:, 1] are contiguous
// blocks of HI = H * (product of the dims after `dim`) elements. Work items are
// (o, chunk of HI), fixed by the shape, each a simd loop (see unary_cpu.h).
template <class F>
void glu_items(int64_t O, int64_t HI, F body) {  // body(o, m0, m1)
  const int64_t C = HI <= 16384 ? HI : 8192, nch = (HI + C - 1) / C;
#pragma omp parallel for if (O * HI > kParallelGrain)
  for (int64_t it = 0; it < O * nch; ++it) {
    const int64_t o = it / nch, m0 = it % nch * C;
    body(o, m0, std::min(HI, m0 + C));
  }
}
// y = a * sigmoid(b).   x: (O, 2, HI), y: (O, HI)
template <class T>
void glu_forward_cpu(T* __restrict y, const T* __restrict x, int64_t O, int64_t HI) {
  glu_items(O, HI, [&](int64_t o, int64_t m0, int64_t m1) {
    const T* a = x + o * 2 * HI;
    const T* b = a + HI;
    T* yo = y + o * HI;
#pragma omp simd
    for (int64_t m = m0; m < m1; ++m) yo[m] = math::glu_fwd(a[m], b[m]);
  });
}
// da += dy * s, db += dy * a * s * (1 - s), s = sigmoid(b).   dx, x: (O, 2, HI), dy: (O, HI)
template <class T>
void glu_backward_cpu(T* __restrict dx, const T* __restrict x, const T* __restrict dy, int64_t O, int64_t HI) {
  glu_items(O, HI, [&](int64_t o, int64_t m0, int64_t m1) {
    const T* a = x + o * 2 * HI;
    const T* b = a + HI;
    T* da = dx + o * 2 * HI;
    T* db = da + HI;
    const T* dyo = dy + o * HI;
#pragma omp simd
    for (int64_t m = m0; m < m1; ++m) {
      T ga, gb;
      math::glu_bwd(a[m], b[m], dyo[m], ga, gb);
      da[m] += ga;
      db[m] += gb;
    }
  });
}

// y = glu(x, dim).   x: (O, 2, HI), y: (O, HI)
struct GluFn final : Node {
  Tensor x;
  int64_t O = 0, HI = 0;
  const char* name() const override { return "glu"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    dispatch_float(x.dtype(), "glu", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) glu_backward_cuda(g[0].data<T>(), x.data<T>(), dy.data<T>(), O, HI);
        return;
      }
      glu_backward_cpu(g[0].data<T>(), x.data<T>(), dy.data<T>(), O, HI);
    });
  }
  void release() override { x = Tensor(); }
};

}  // namespace

Tensor relu(const Tensor& x) { return unary(x, ReluOp{}); }
Tensor gelu(const Tensor& x) { return unary(x, GeluOp{}); }
Tensor gelu_tanh(const Tensor& x) { return unary(x, GeluTanhOp{}); }
Tensor silu(const Tensor& x) { return unary(x, SiluOp{}); }
Tensor sigmoid(const Tensor& x) { return unary(x, SigmoidOp{}); }
Tensor tanh(const Tensor& x) { return unary(x, TanhOp{}); }
Tensor hardswish(const Tensor& x) { return unary(x, HardswishOp{}); }

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
  dispatch_float(x.dtype(), "glu", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) glu_forward_cuda(y.data<T>(), x.data<T>(), O, HI);
      return;
    }
    glu_forward_cpu(y.data<T>(), x.data<T>(), O, HI);
  });
  if (auto n = record<GluFn>(y, {x})) {
    n->x = x;
    n->O = O;
    n->HI = HI;
  }
  return y;
}

}  // namespace pw
