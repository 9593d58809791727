#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/unfold/im2col.h"
#include "kernels/unfold/unfold.h"
#include "kernels/unfold/unfold_cuda.h"

namespace pw {

namespace {

// y (B, C*KH*KW, L) <- x (B,C,H,W). One (image, channel) pair per task: each writes its own rows.
template <class T>
void unfold_forward_cpu(T* y, const T* x, int64_t B, const ConvGeom& g) {
  TapRanges r(g);
  int64_t L = g.ohw(), per_image = g.C * g.kk() * L;
#pragma omp parallel for collapse(2) if (B * per_image > kParallelGrain)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < g.C; ++c) im2col(y + b * per_image, L, x + b * g.C * g.H * g.W, g, r, c, c + 1);
}

// Forward was y = unfold(x); dx += fold(dy). Each task owns one channel of one image of dx.
template <class T>
void unfold_backward_cpu(T* dx, const T* dy, int64_t B, const ConvGeom& g) {
  TapRanges r(g);
  int64_t L = g.ohw(), per_image = g.C * g.kk() * L;
#pragma omp parallel if (B * per_image > kParallelGrain)
  {
    std::vector<T> plane(g.H * g.W);  // col2im scratch
#pragma omp for collapse(2)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < g.C; ++c)
        col2im(dx + b * g.C * g.H * g.W, dy + b * per_image, L, g, r, c, c + 1, plane.data());
  }
}

// y = unfold(x).   x: (B,C,H,W)  y: (B, C*KH*KW, OH*OW)
struct UnfoldFn final : Node {
  ConvGeom g;
  int64_t B = 0;
  const char* name() const override { return "unfold"; }
  void backward(const Tensor& dy, Grads& grads) override {
    if (!grads.needs(0)) return;
    dispatch_float(dy.dtype(), "unfold", [&](auto tag) {
      using T = decltype(tag);
      const int64_t per_image = g.C * g.kk() * g.ohw();
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) col2im_cuda(grads[0].data<T>(), dy.data<T>(), B, g, per_image, g.ohw());
        return;
      }
      unfold_backward_cpu(grads[0].data<T>(), dy.data<T>(), B, g);
    });
  }
};

}  // namespace

Tensor unfold(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> dilation,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> stride) {
  ConvGeom g = make_geom("unfold", x, kernel[0], kernel[1], stride, padding, dilation);
  int64_t B = x.size(0);
  Tensor y = empty({B, g.C * g.kk(), g.ohw()}, x.dtype(), x.device());
  dispatch_float(x.dtype(), "unfold", [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) im2col_cuda(y.data<T>(), x.data<T>(), B, g, g.C * g.kk() * g.ohw(), g.ohw());
      return;
    }
    unfold_forward_cpu(y.data<T>(), x.data<T>(), B, g);
  });
  if (auto n = record<UnfoldFn>(y, {x})) {
    n->g = g;
    n->B = B;
  }
  return y;
}

}  // namespace pw
