// attention_qkv and attention_qkv_bias: public ops, the autograd node and the
// dispatch rows (device-agnostic; the kernels are in attention_cpu.cpp and
// attention_cuda.cu / flash_attention_cuda.cu).
#include "kernels/attention/attention.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/attention/attention_kernels.h"

namespace pw {

namespace {

// y = softmax(scale * q k^T + bias) v per head.   qkv: (B,N,3*NH*HD)  bias: (Bb,Hb,N,N) or undefined
// y: (B,N,NH*HD). Both ops run the same kernels; attention_qkv passes no bias.
using AttnFwd = void(Tensor& y, AttnSaved& s, const Tensor& qkv, const Tensor& bias, double scale);
using AttnBwd = void(GradBuf dqkv, GradBuf dbias, const Tensor& dy, const AttnSaved& s, const Tensor& bias,
                     double scale);
using AttnRow = OpRow<AttnFwd, AttnBwd>;
PW_OP_ROW(kAttentionQkv, "attention_qkv", "attention", AttnFwd, AttnBwd, attention_forward_cpu,
          PW_CUDA_KERNEL(attention_forward_cuda), attention_backward_cpu, PW_CUDA_KERNEL(attention_backward_cuda));
PW_OP_ROW(kAttentionQkvBias, "attention_qkv_bias", "attention", AttnFwd, AttnBwd, attention_forward_cpu,
          PW_CUDA_KERNEL(attention_forward_cuda), attention_backward_cpu, PW_CUDA_KERNEL(attention_backward_cuda));

// y = attention_qkv(qkv) or attention_qkv_bias(qkv, bias); inputs qkv (and bias).
struct AttentionFn final : Node {
  const AttnRow* row = nullptr;
  AttnSaved s;  // what the forward kernel kept: qkv and p (CPU), or q/k/v, o, lse (CUDA)
  Tensor bias;
  double scale = 1;
  const char* name() const override { return "attention"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0) && !(bias.defined() && g.needs(1))) return;
    row->bwd(dy.device())(g.buf(0), bias.defined() ? g.buf(1) : GradBuf{}, dy, s, bias, scale);
  }
  void release() override {
    s.qkv = s.p = s.qkvp = s.o = s.lse = Tensor();
    bias = Tensor();
  }
};

bool g_attention_bf16 = false;

// Checks qkv and fills the shapes of one call (the bias layout is left at (1,1)).
AttnDims attention_dims(const char* op, const Tensor& qkv, int64_t heads) {
  PW_CHECK(heads > 0, op, ": heads must be positive, got ", heads);
  PW_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0 && qkv.size(2) > 0, op, ": expected qkv of ",
           "shape (B,N,3*heads*dim_head) with heads = ", heads, ", got ", qkv.str());
  AttnDims d;
  d.op = op;
  d.B = qkv.size(0);
  d.N = qkv.size(1);
  d.NH = heads;
  d.HD = qkv.size(2) / (3 * heads);
  return d;
}

// attention_qkv(_bias) on qkv's device; bias undefined for none.
Tensor attention_impl(const AttnRow& row, const Tensor& qkv, const Tensor& bias, const AttnDims& d, double scale) {
  Tensor y = empty({d.B, d.N, d.D()}, qkv.dtype(), qkv.device());
  AttnSaved s;
  s.d = d;
  row.fwd(qkv.device())(y, s, qkv, bias, scale);
  std::shared_ptr<AttentionFn> n = bias.defined() ? record<AttentionFn>(y, {qkv, bias}) : record<AttentionFn>(y, {qkv});
  if (n) {
    n->row = &row;
    n->s = std::move(s);
    n->bias = bias;
    n->scale = scale;
  }
  return y;
}

}  // namespace

Tensor attention_qkv(const Tensor& qkv, int64_t heads, double scale) {
  return attention_impl(kAttentionQkv, qkv, Tensor(), attention_dims("attention_qkv", qkv, heads), scale);
}

bool attention_bias_fits(const Shape& bias, int64_t B, int64_t NH, int64_t N) {
  const int64_t nd = (int64_t)bias.size();
  if (nd < 2 || nd > 4 || bias[nd - 1] != N || bias[nd - 2] != N) return false;
  const int64_t Hb = nd >= 3 ? bias[nd - 3] : 1, Bb = nd == 4 ? bias[0] : 1;
  return (Bb == 1 || Bb == B) && (Hb == 1 || Hb == NH);
}

Tensor attention_qkv_bias(const Tensor& qkv, const Tensor& bias, int64_t heads, double scale) {
  const char* op = "attention_qkv_bias";
  AttnDims d = attention_dims(op, qkv, heads);
  PW_CHECK(bias.defined(), op, ": bias is undefined; use attention_qkv for attention without a bias");
  check_same_device(op, qkv, bias);
  check_same_dtype(op, qkv, bias);
  PW_CHECK(attention_bias_fits(bias.shape(), d.B, d.NH, d.N), op, ": bias ", bias.str(),
           " does not broadcast to the logits (B,NH,N,N) = (", d.B, ",", d.NH, ",", d.N, ",", d.N,
           ") of qkv ", qkv.str(), "; expected (N,N), (NH or 1,N,N) or (B or 1,NH or 1,N,N)");
  const int64_t nd = bias.dim();
  d.Hb = nd >= 3 ? bias.size(nd - 3) : 1;
  d.Bb = nd == 4 ? bias.size(0) : 1;
  return attention_impl(kAttentionQkvBias, qkv, bias, d, scale);
}

void set_attention_bf16(bool on) { g_attention_bf16 = on; }
bool attention_bf16() { return g_attention_bf16; }

}  // namespace pw
