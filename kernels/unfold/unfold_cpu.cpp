// CPU kernels of unfold: compute only, no graph, no device test.
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/unfold/im2col.h"
#include "kernels/unfold/unfold_kernels.h"

namespace pw {

namespace {

// y (B, C*KH*KW, L) <- x (B,C,H,W). One (image, channel) pair per task: each writes its own rows.
template <class T>
void unfold_forward_loop(T* y, const T* x, int64_t B, const ConvGeom& g) {
  TapRanges r(g);
  int64_t L = g.ohw(), per_image = g.C * g.kk() * L;
#pragma omp parallel for collapse(2) if (B * per_image > kParallelGrain)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < g.C; ++c) im2col(y + b * per_image, L, x + b * g.C * g.H * g.W, g, r, c, c + 1);
}

// Forward was y = unfold(x); dx (+)= fold(dy). Each task owns one channel of one image of dx.
template <class T>
void unfold_backward_loop(T* dx, const T* dy, int64_t B, const ConvGeom& g, bool accumulate) {
  TapRanges r(g);
  int64_t L = g.ohw(), per_image = g.C * g.kk() * L;
#pragma omp parallel if (B * per_image > kParallelGrain)
  {
    std::vector<T> plane(g.H * g.W);  // col2im scratch
#pragma omp for collapse(2)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < g.C; ++c)
        col2im(dx + b * g.C * g.H * g.W, dy + b * per_image, L, g, r, c, c + 1, plane.data(), accumulate);
  }
}

}  // namespace

void unfold_forward_cpu(Tensor& y, const Tensor& x, const ConvGeom& g) {
  dispatch_float(x.dtype(), "unfold", [&](auto tag) {
    using T = decltype(tag);
    unfold_forward_loop(y.data<T>(), x.data<T>(), x.size(0), g);
  });
}

void unfold_backward_cpu(GradBuf dx, const Tensor& dy, const ConvGeom& g) {
  dispatch_float(dy.dtype(), "unfold", [&](auto tag) {
    using T = decltype(tag);
    unfold_backward_loop(dx.data<T>(), dy.data<T>(), dx->size(0), g, dx.accumulate);
  });
}

}  // namespace pw
