// unfold: the public op, its autograd node and dispatch row (device-agnostic;
// the kernels are in unfold_cpu.cpp and unfold_cuda.cu).
#include "kernels/unfold/unfold.h"

#include "autograd/op_table.h"
#include "kernels/unfold/im2col.h"
#include "kernels/unfold/unfold_kernels.h"

namespace pw {

namespace {

// y = unfold(x).   x: (B,C,H,W)  y: (B, C*KH*KW, OH*OW)
using UnfoldFwd = void(Tensor& y, const Tensor& x, const ConvGeom& g);
using UnfoldBwd = void(GradBuf dx, const Tensor& dy, const ConvGeom& g);
PW_OP_ROW(kUnfold, "unfold", "unfold", UnfoldFwd, UnfoldBwd, unfold_forward_cpu, PW_CUDA_KERNEL(unfold_forward_cuda),
          unfold_backward_cpu, PW_CUDA_KERNEL(unfold_backward_cuda));

struct UnfoldFn final : Node {
  ConvGeom g;
  const char* name() const override { return "unfold"; }
  void backward(const Tensor& dy, Grads& grads) override {
    if (grads.needs(0)) kUnfold.bwd(dy.device())(grads.buf(0), dy, g);
  }
};

}  // namespace

Tensor unfold(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> dilation,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> stride) {
  ConvGeom g = make_geom("unfold", x, kernel[0], kernel[1], stride, padding, dilation);
  Tensor y = empty({x.size(0), g.C * g.kk(), g.ohw()}, x.dtype(), x.device());
  kUnfold.fwd(x.device())(y, x, g);
  if (auto n = record<UnfoldFn>(y, {x})) n->g = g;
  return y;
}

}  // namespace pw
