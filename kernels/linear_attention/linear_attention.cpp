// linear_attention_qkv: the public op, its autograd node and the dispatch row
// (device-agnostic; the kernels are in linear_attention_cpu.cpp and
// linear_attention_cuda.cu).
#include "kernels/linear_attention/linear_attention.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/linear_attention/linear_attention_kernels.h"
#include "kernels/linear_attention/linear_attention_math.h"

namespace pw {

namespace {

// y = linear attention per head.   qkv: (B,N,3*NH*HD)  mask: (B,N) or undefined  y: (B,N,NH*HD)
using LinAttnFwd = void(Tensor& y, LinAttnSaved& s, const Tensor& qkv, const Tensor& mask);
using LinAttnBwd = void(GradBuf dqkv, const Tensor& dy, const LinAttnSaved& s);
PW_OP_ROW(kLinearAttentionQkv, "linear_attention_qkv", "linear_attention", LinAttnFwd, LinAttnBwd,
          linear_attention_forward_cpu, PW_CUDA_KERNEL(linear_attention_forward_cuda),
          linear_attention_backward_cpu, PW_CUDA_KERNEL(linear_attention_backward_cuda));

// y = linear_attention_qkv(qkv, ...); input qkv (the mask is a constant).
struct LinearAttentionFn final : Node {
  LinAttnSaved s;
  const char* name() const override { return "linear_attention"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kLinearAttentionQkv.bwd(dy.device())(g.buf(0), dy, s);
  }
  void release() override { s.qkv = s.mask = s.state = s.den = s.phiq = s.phik = s.nd = Tensor(); }
};

}  // namespace

LinearFeatureMap linear_feature_map(const std::string& name) {
  if (name == "taylor") return LinearFeatureMap::Taylor;
  if (name == "elu") return LinearFeatureMap::Elu;
  PW_FAIL("linear attention: unknown feature map '", name, "'; expected taylor or elu");
}

Tensor linear_attention_qkv(const Tensor& qkv, int64_t heads, LinearFeatureMap fm, bool causal,
                            const Tensor& key_mask) {
  const char* op = "linear_attention_qkv";
  PW_CHECK(heads > 0, op, ": heads must be positive, got ", heads);
  PW_CHECK(qkv.defined() && qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0 && qkv.size(2) > 0, op,
           ": expected qkv of shape (B,N,3*heads*dim_head) with heads = ", heads, ", got ",
           qkv.defined() ? qkv.str() : std::string("an undefined tensor"));
  LinAttnDims d;
  d.op = op;
  d.B = qkv.size(0);
  d.N = qkv.size(1);
  d.NH = heads;
  d.HD = qkv.size(2) / (3 * heads);
  d.fm = fm == LinearFeatureMap::Taylor ? math::kLinTaylor : math::kLinElu;
  d.causal = causal;
  Tensor mask;
  if (key_mask.defined()) {
    check_same_device(op, qkv, key_mask);
    check_same_dtype(op, qkv, key_mask);
    PW_CHECK(key_mask.dim() == 2 && key_mask.size(0) == d.B && key_mask.size(1) == d.N, op, ": key_mask ",
             key_mask.str(), " does not match qkv ", qkv.str(), "; expected (B,N) = (", d.B, ",", d.N, ")");
    mask = key_mask.detach();
  }
  Tensor y = empty({d.B, d.N, d.D()}, qkv.dtype(), qkv.device());
  LinAttnSaved s;
  s.d = d;
  kLinearAttentionQkv.fwd(qkv.device())(y, s, qkv, mask);
  if (auto n = record<LinearAttentionFn>(y, {qkv})) n->s = std::move(s);
  return y;
}

}  // namespace pw
