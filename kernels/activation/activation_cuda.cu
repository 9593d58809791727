#include "autograd/dispatch.h"
#include "kernels/activation/activation_kernels.h"
#include "kernels/activation/activation_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// One thread per output element t = (o, m).   x: (O, 2, HI), y: (O, HI)
template <class T>
__global__ void glu_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t O, int64_t HI) {
  PW_GRID_STRIDE(t, O * HI) {
    const int64_t o = t / HI, m = t - o * HI;
    const T* a = x + o * 2 * HI + m;
    y[t] = math::glu_fwd(a[0], a[HI]);
  }
}
// acc: add into dx, else write it (GradBuf contract).
template <class T>
__global__ void glu_bwd_kernel(T* dx, const T* __restrict__ x, const T* __restrict__ dy, int64_t O, int64_t HI,
                               bool acc) {
  PW_GRID_STRIDE(t, O * HI) {
    const int64_t o = t / HI, m = t - o * HI, k = o * 2 * HI + m;
    T ga, gb;
    math::glu_bwd(x[k], x[k + HI], dy[t], ga, gb);
    dx[k] = acc ? dx[k] + ga : ga;
    dx[k + HI] = acc ? dx[k + HI] + gb : gb;
  }
}

}  // namespace

void glu_forward_cuda(Tensor& y, const Tensor& x, int64_t O, int64_t HI) {
  if (O * HI == 0) return;
  dispatch_float(x.dtype(), "glu", [&](auto tag) {
    using T = decltype(tag);
    glu_fwd_kernel<T><<<cuda::grid_for(O * HI), cuda::kBlock, 0, cuda::stream()>>>(y.data<T>(), x.data<T>(), O, HI);
  });
  PW_CUDA_LAUNCH_CHECK();
}
void glu_backward_cuda(GradBuf dx, const Tensor& x, const Tensor& dy, int64_t O, int64_t HI) {
  if (O * HI == 0) return;
  dispatch_float(x.dtype(), "glu", [&](auto tag) {
    using T = decltype(tag);
    glu_bwd_kernel<T><<<cuda::grid_for(O * HI), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), x.data<T>(), dy.data<T>(), O, HI, dx.accumulate);
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace pw
