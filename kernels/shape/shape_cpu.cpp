// CPU kernels of the copying shape ops: compute only, no graph, no device test.
#include "autograd/dispatch.h"
#include "kernels/shape/shape_kernels.h"
#include "kernels/shape/strided.h"

namespace pw {

void copy_forward_cpu(Tensor& y, const Tensor& x, const CopyPlan& c) {
  for (const Piece& pc : c.pieces) {
    const StridedPlan p = make_plan(pc.size, pc.sy, pc.sx);
    dispatch_copy(y.dtype(), c.op, [&](auto tag) {
      using T = decltype(tag);
      strided_cpu<false>(y.data<T>() + pc.oy, x.data<T>() + pc.ox, p);
    });
  }
}

void copy_backward_cpu(GradBuf dx, const Tensor& dy, const CopyPlan& c) {
  for (const Piece& pc : c.pieces) {
    const StridedPlan p = make_plan(pc.size, pc.sx, pc.sy);
    dispatch_float(dx->dtype(), c.op, [&](auto tag) {
      using T = decltype(tag);
      if (dx.accumulate) strided_cpu<true>(dx.data<T>() + pc.ox, dy.data<T>() + pc.oy, p);
      else strided_cpu<false>(dx.data<T>() + pc.ox, dy.data<T>() + pc.oy, p);
    });
  }
}

void pad_forward_cpu(Tensor& y, const Tensor& x, const CopyPlan& c, double value) {
  dispatch_copy(y.dtype(), c.op, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.data<T>();
    int64_t m = y.numel();
    T v = (T)value;
#pragma omp parallel for if (m > kParallelGrain)
    for (int64_t i = 0; i < m; ++i) p[i] = v;
  });
  copy_forward_cpu(y, x, c);
}

}  // namespace pw
