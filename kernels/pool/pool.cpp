// The pooling ops: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in pool_cpu.cpp and pool_cuda.cu).
#include "kernels/pool/pool.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/pool/pool_kernels.h"

namespace pw {

namespace {

// Checks one axis of a pooling and returns its output length.
//   what: "height", "width" or "length" for the message.
int64_t pool_axis(const char* op, const Tensor& x, const char* what, int64_t in, int64_t k,
                  int64_t s, int64_t p, bool ceil_mode) {
  PW_CHECK(k > 0 && s > 0, op, ": kernel and stride must be positive, got kernel ", k,
           " and stride ", s, " along the ", what, " of ", x.str());
  PW_CHECK(p >= 0 && p <= k / 2, op, ": padding ", p, " along the ", what,
           " must be in [0, kernel/2] = [0, ", k / 2, "] for kernel ", k, " (as in torch); input ",
           x.str());
  PW_CHECK(k <= in + 2 * p, op, ": kernel ", k, " is larger than the padded input ", what, " ",
           in, " + 2*", p, " of ", x.str(), "; use a smaller kernel or more padding");
  int64_t out = math::pool_out_size(in, k, s, p, ceil_mode);
  PW_CHECK(out > 0, op, ": output ", what, " would be ", out, " for ", x.str());
  return out;
}

PoolGeom make_geom(const char* op, const Tensor& x, int64_t H, int64_t W, std::array<int64_t, 2> k,
                   std::array<int64_t, 2> s, std::array<int64_t, 2> p, bool ceil_mode,
                   bool count_include_pad, bool one_d) {
  PoolGeom g;
  g.H = H;
  g.W = W;
  g.P = x.size(0) * x.size(1);
  g.kH = k[0], g.kW = k[1], g.sH = s[0], g.sW = s[1], g.padH = p[0], g.padW = p[1];
  g.ceil_mode = ceil_mode;
  g.count_include_pad = count_include_pad;
  g.OH = one_d ? 1 : pool_axis(op, x, "height", H, k[0], s[0], p[0], ceil_mode);
  g.OW = pool_axis(op, x, one_d ? "length" : "width", W, k[1], s[1], p[1], ceil_mode);
  g.rows.resize(g.OH);
  g.cols.resize(g.OW);
  for (int64_t o = 0; o < g.OH; ++o) g.rows[o] = math::pool_window(o, g.kH, g.sH, g.padH, g.H);
  for (int64_t o = 0; o < g.OW; ++o) g.cols[o] = math::pool_window(o, g.kW, g.sW, g.padW, g.W);
  return g;
}

// y = avg_pool(x).   x: (P,H,W)  y: (P,OH,OW)
using AvgPoolFwd = void(Tensor& y, const Tensor& x, const PoolGeom& g);
using AvgPoolBwd = void(GradBuf dx, const Tensor& dy, const PoolGeom& g);
PW_OP_ROW(kAvgPool2d, "avg_pool2d", "pool", AvgPoolFwd, AvgPoolBwd, avg_pool_forward_cpu,
          PW_CUDA_KERNEL(avg_pool_forward_cuda), avg_pool_backward_cpu, PW_CUDA_KERNEL(avg_pool_backward_cuda));
PW_OP_ROW(kAvgPool1d, "avg_pool1d", "pool", AvgPoolFwd, AvgPoolBwd, avg_pool_forward_cpu,
          PW_CUDA_KERNEL(avg_pool_forward_cuda), avg_pool_backward_cpu, PW_CUDA_KERNEL(avg_pool_backward_cuda));
// y, argmax = max_pool(x).   x: (P,H,W)  y, argmax: (P,OH,OW)
using MaxPoolFwd = void(Tensor& y, Tensor& argmax, const Tensor& x, const PoolGeom& g);
using MaxPoolBwd = void(GradBuf dx, const Tensor& dy, const Tensor& argmax, const PoolGeom& g);
PW_OP_ROW(kMaxPool2d, "max_pool2d", "pool", MaxPoolFwd, MaxPoolBwd, max_pool_forward_cpu,
          PW_CUDA_KERNEL(max_pool_forward_cuda), max_pool_backward_cpu, PW_CUDA_KERNEL(max_pool_backward_cuda));
// y = mean of each plane.   x: (P,HW)  y: (P)
using GapFwd = void(Tensor& y, const Tensor& x, int64_t P, int64_t HW);
using GapBwd = void(GradBuf dx, const Tensor& dy, int64_t P, int64_t HW);
PW_OP_ROW(kGlobalAvgPool2d, "global_avg_pool2d", "pool", GapFwd, GapBwd, global_avg_pool_forward_cpu,
          PW_CUDA_KERNEL(global_avg_pool_forward_cuda), global_avg_pool_backward_cpu,
          PW_CUDA_KERNEL(global_avg_pool_backward_cuda));

struct AvgPoolFn final : Node {
  PoolGeom g;
  const OpRow<AvgPoolFwd, AvgPoolBwd>* row = &kAvgPool2d;
  const char* name() const override { return row->info.name; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (gr.needs(0)) row->bwd(dy.device())(gr.buf(0), dy, g);
  }
};

Tensor avg_pool_impl(const OpRow<AvgPoolFwd, AvgPoolBwd>& row, const Tensor& x, const PoolGeom& g,
                     const Shape& out_shape) {
  Tensor y = empty(out_shape, x.dtype(), x.device());
  row.fwd(x.device())(y, x, g);
  if (auto n = record<AvgPoolFn>(y, {x})) {
    n->g = g;
    n->row = &row;
  }
  return y;
}

struct MaxPool2dFn final : Node {
  PoolGeom g;
  Tensor argmax;  // (B,C,OH,OW) i64
  const char* name() const override { return "max_pool2d"; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (gr.needs(0)) kMaxPool2d.bwd(dy.device())(gr.buf(0), dy, argmax, g);
  }
  void release() override { argmax = Tensor(); }
};

struct GlobalAvgPool2dFn final : Node {
  int64_t P = 0, HW = 0;
  const char* name() const override { return "global_avg_pool2d"; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (gr.needs(0)) kGlobalAvgPool2d.bwd(dy.device())(gr.buf(0), dy, P, HW);
  }
};

// x may live on the CPU or on CUDA; every op below dispatches on x.device().
void check_rank(const char* op, const Tensor& x, int64_t rank, const char* layout) {
  PW_CHECK(x.defined(), op, ": input is an undefined tensor");
  PW_CHECK(x.dim() == rank, op, ": expected a ", rank, "-d input ", layout, ", got ", x.str());
}

// The kernels take f32 or f64; anything else is the user's error, named here.
void check_float(const char* op, const Tensor& x) { dispatch_float(x.dtype(), op, [](auto) {}); }

}  // namespace

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, bool ceil_mode, bool count_include_pad) {
  const char* op = "avg_pool2d";
  check_rank(op, x, 4, "(B,C,H,W)");
  PoolGeom g = make_geom(op, x, x.size(2), x.size(3), kernel, stride, padding, ceil_mode,
                         count_include_pad, /*one_d=*/false);
  check_float(op, x);
  return avg_pool_impl(kAvgPool2d, x, g, {x.size(0), x.size(1), g.OH, g.OW});
}

Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool1d";
  check_rank(op, x, 3, "(B,C,L)");
  PoolGeom g = make_geom(op, x, 1, x.size(2), {1, kernel}, {1, stride}, {0, padding}, ceil_mode,
                         count_include_pad, /*one_d=*/true);
  check_float(op, x);
  return avg_pool_impl(kAvgPool1d, x, g, {x.size(0), x.size(1), g.OW});
}

Tensor global_avg_pool2d(const Tensor& x) {
  const char* op = "global_avg_pool2d";
  check_rank(op, x, 4, "(B,C,H,W)");
  int64_t P = x.size(0) * x.size(1), HW = x.size(2) * x.size(3);
  PW_CHECK(HW > 0, op, ": empty planes in ", x.str(), "; H and W must be positive");
  check_float(op, x);
  Tensor y = empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  kGlobalAvgPool2d.fwd(x.device())(y, x, P, HW);
  if (auto n = record<GlobalAvgPool2dFn>(y, {x})) n->P = P, n->HW = HW;
  return y;
}

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, bool ceil_mode) {
  const char* op = "max_pool2d";
  check_rank(op, x, 4, "(B,C,H,W)");
  PoolGeom g = make_geom(op, x, x.size(2), x.size(3), kernel, stride, padding, ceil_mode,
                         /*count_include_pad=*/true, /*one_d=*/false);
  check_float(op, x);
  Tensor y = empty({x.size(0), x.size(1), g.OH, g.OW}, x.dtype(), x.device());
  Tensor argmax = empty(y.shape(), DType::I64, x.device());
  kMaxPool2d.fwd(x.device())(y, argmax, x, g);
  if (auto n = record<MaxPool2dFn>(y, {x})) {
    n->g = g;
    n->argmax = argmax;
  }
  return y;
}

}  // namespace pw
