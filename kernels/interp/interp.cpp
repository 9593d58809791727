// The resizing ops: public functions, autograd node and dispatch rows
// (device-agnostic; the kernels are in interp_cpu.cpp and interp_cuda.cu).
#include "kernels/interp/interp.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/interp/interp_kernels.h"

namespace pw {

namespace {

// y = resize(x).   x: (P,H,W)  y: (P,OH,OW); the two modes share the kernels (g.cubic).
using ResizeFwd = void(Tensor& y, const Tensor& x, const ResizeGeom& g);
using ResizeBwd = void(GradBuf dx, const Tensor& dy, const ResizeGeom& g);
PW_OP_ROW(kInterpolateBilinear, "interpolate_bilinear", "interp", ResizeFwd, ResizeBwd, resize_forward_cpu,
          PW_CUDA_KERNEL(resize_forward_cuda), resize_backward_cpu, PW_CUDA_KERNEL(resize_backward_cuda));
PW_OP_ROW(kInterpolateBicubic, "interpolate_bicubic", "interp", ResizeFwd, ResizeBwd, resize_forward_cpu,
          PW_CUDA_KERNEL(resize_forward_cuda), resize_backward_cpu, PW_CUDA_KERNEL(resize_backward_cuda));

struct ResizeFn final : Node {
  ResizeGeom g;
  const char* name() const override { return g.cubic ? "interpolate_bicubic" : "interpolate_bilinear"; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (!gr.needs(0)) return;
    const auto& row = g.cubic ? kInterpolateBicubic : kInterpolateBilinear;
    row.bwd(dy.device())(gr.buf(0), dy, g);
  }
};

Tensor resize(const char* op, const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners, bool cubic) {
  PW_CHECK(x.defined(), op, ": input is an undefined tensor");
  PW_CHECK(x.dim() == 4, op, ": expected a 4-d input (B,C,H,W), got ", x.str());
  PW_CHECK(out_h > 0 && out_w > 0, op, ": output size must be positive, got (", out_h, ", ", out_w,
           ") for input ", x.str());
  PW_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": input planes are empty in ", x.str());
  ResizeGeom g;
  g.P = x.size(0) * x.size(1);
  g.H = x.size(2), g.W = x.size(3), g.OH = out_h, g.OW = out_w;
  g.align_corners = align_corners;
  g.cubic = cubic;
  dispatch_float(x.dtype(), op, [](auto) {});  // f32 or f64, else an error naming the op
  Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
  const auto& row = cubic ? kInterpolateBicubic : kInterpolateBilinear;
  row.fwd(x.device())(y, x, g);
  if (auto n = record<ResizeFn>(y, {x})) n->g = g;
  return y;
}

}  // namespace

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return resize("interpolate_bilinear", x, out_h, out_w, align_corners, /*cubic=*/false);
}

Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return resize("interpolate_bicubic", x, out_h, out_w, align_corners, /*cubic=*/true);
}

}  // namespace pw
