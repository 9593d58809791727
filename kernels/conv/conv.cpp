// conv2d / conv1d: public functions, autograd node and dispatch rows
// (device-agnostic; the kernels are in conv_cpu.cpp, conv_cuda.cu and conv_cudnn.cu).
#include "kernels/conv/conv.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/conv/conv_kernels.h"
#include "kernels/unfold/im2col.h"

namespace pw {

namespace {
ConvEngine g_conv_engine = ConvEngine::Native;
}  // namespace

void set_conv_engine(ConvEngine e) {
#if !defined(PW_HAVE_CUDNN)
  PW_CHECK(e != ConvEngine::Cudnn, "set_conv_engine: this build has no cuDNN (PW_HAVE_CUDNN is off); install cuDNN "
           "and rebuild with PW_CUDA=ON, or keep ConvEngine::Native");
#endif
  g_conv_engine = e;
}
ConvEngine conv_engine() { return g_conv_engine; }

namespace {

// y = conv(x, w) + b.   x: (B,C,H,W)  w: (O,C/groups,KH,KW)  b: (O) or undefined  y: (B,O,OH,OW)
using ConvFwd = void(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const ConvShape& s);
using ConvBwd = void(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                     const ConvShape& s);
PW_OP_ROW(kConv2d, "conv2d", "conv", ConvFwd, ConvBwd, conv_forward_cpu, PW_CUDA_KERNEL(conv_forward_cuda),
          conv_backward_cpu, PW_CUDA_KERNEL(conv_backward_cuda));
// conv1d is conv2d on a height-1 image: the same kernels.
PW_OP_ROW(kConv1d, "conv1d", "conv", ConvFwd, ConvBwd, conv_forward_cpu, PW_CUDA_KERNEL(conv_forward_cuda),
          conv_backward_cpu, PW_CUDA_KERNEL(conv_backward_cuda));

// y = conv2d(x, w, b).   x: (B,C,H,W)  w: (O,C/groups,KH,KW)  b: (O)  y: (B,O,OH,OW)
struct Conv2dFn final : Node {
  Tensor x, w;
  ConvShape s;  // with the engine of the forward, for CUDA tensors
  const OpRow<ConvFwd, ConvBwd>* row = &kConv2d;
  const char* name() const override { return "conv2d"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0) || g.needs(1) || g.needs(2)) row->bwd(dy.device())(g.buf(0), g.buf(1), g.buf(2), dy, x, w, s);
  }
  void release() override {
    x = Tensor();
    w = Tensor();
  }
};

// Channel, group and bias checks shared by conv2d and conv1d (x, w of either rank).
void check_conv_channels(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int64_t groups) {
  check_same_device(op, x, w);
  check_same_dtype(op, x, w);
  PW_CHECK(groups >= 1, op, ": groups must be >= 1, got ", groups);
  const int64_t C = x.size(1), O = w.size(0);
  PW_CHECK(C % groups == 0 && O % groups == 0, op, ": groups = ", groups, " must divide both the input channels (x ",
           x.str(), ") and the output channels (w ", w.str(), ")");
  PW_CHECK(w.size(1) * groups == C, op, ": weight ", w.str(), " expects ", w.size(1) * groups,
           " input channels (w.size(1) * groups), but x ", x.str(), " has ", C);
  if (b.defined()) {
    check_same_device(op, x, b);
    check_same_dtype(op, x, b);
    PW_CHECK(b.dim() == 1 && b.size(0) == O, op, ": bias must be (O) = (", O, "), got ", b.str(), " for weight ",
             w.str());
  }
}

Tensor conv2d_impl(const OpRow<ConvFwd, ConvBwd>& row, const char* op, const Tensor& x, const Tensor& w,
                   const Tensor& b, std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                   std::array<int64_t, 2> dilation, int64_t groups) {
  ConvShape s;
  s.g = make_geom(op, x, w.size(2), w.size(3), stride, padding, dilation);
  s.B = x.size(0);
  s.O = w.size(0);
  s.groups = groups;
  s.engine = conv_engine();
  dispatch_float(x.dtype(), op, [](auto) {});  // f32 or f64, else an error naming the op
  Tensor y = empty({s.B, s.O, s.g.OH, s.g.OW}, x.dtype(), x.device());
  row.fwd(x.device())(y, x, w, b, s);
  if (auto n = record<Conv2dFn>(y, {x, w, b})) {
    n->x = x;
    n->w = w;
    n->s = s;
    n->row = &row;
  }
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  PW_CHECK(x.dim() == 4, "conv2d: expected x of shape (B,C,H,W), got ", x.str());
  PW_CHECK(w.dim() == 4, "conv2d: expected weight of shape (O,C/groups,KH,KW), got ", w.str(), " (x is ", x.str(), ")");
  check_conv_channels("conv2d", x, w, b, groups);
  return conv2d_impl(kConv2d, "conv2d", x, w, b, stride, padding, dilation, groups);
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding, int64_t dilation,
              int64_t groups) {
  PW_CHECK(x.dim() == 3, "conv1d: expected x of shape (B,C,L), got ", x.str());
  PW_CHECK(w.dim() == 3, "conv1d: expected weight of shape (O,C/groups,K), got ", w.str(), " (x is ", x.str(), ")");
  check_conv_channels("conv1d", x, w, b, groups);
  PW_CHECK(stride >= 1 && dilation >= 1 && padding >= 0, "conv1d: need stride >= 1, dilation >= 1, padding >= 0; got ",
           stride, ", ", dilation, ", ", padding);
  int64_t OL = conv_out_size(x.size(2), w.size(2), stride, padding, dilation);
  PW_CHECK(OL > 0, "conv1d: output length would be ", OL, " for x ", x.str(), ", weight ", w.str(), ", stride ",
           stride, ", padding ", padding, ", dilation ", dilation, "; the dilated kernel must fit in the padded input");
  Tensor y = conv2d_impl(kConv1d, "conv1d", x.reshape({x.size(0), x.size(1), 1, x.size(2)}),
                        w.reshape({w.size(0), w.size(1), 1, w.size(2)}), b, {1, stride}, {0, padding}, {1, dilation},
                        groups);
  return y.reshape({x.size(0), w.size(0), OL});
}

}  // namespace pw
