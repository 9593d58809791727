#include "kernels/activation/activation_cuda.h"
#include "kernels/activation/activation_math.h"
#include "kernels/cuda/common.cuh"

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
template <class T>
__global__ void glu_bwd_kernel(T* dx, const T* __restrict__ x, const T* __restrict__ dy, int64_t O, int64_t HI) {
  PW_GRID_STRIDE(t, O * HI) {
    const int64_t o = t / HI, m = t - o * HI, k = o * 2 * HI + m;
    T ga, gb;
    math::glu_bwd(x[k], x[k + HI], dy[t], ga, gb);
    dx[k] += ga;
    dx[k + HI] += gb;
  }
}

}  // namespace

template <class T> void glu_forward_cuda(T* y, const T* x, int64_t O, int64_t HI) {
  if (O * HI == 0) return;
  glu_fwd_kernel<T><<<cuda::grid_for(O * HI), cuda::kBlock, 0, cuda::stream()>>>(y, x, O, HI);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T> void glu_backward_cuda(T* dx, const T* x, const T* dy, int64_t O, int64_t HI) {
  if (O * HI == 0) return;
  glu_bwd_kernel<T><<<cuda::grid_for(O * HI), cuda::kBlock, 0, cuda::stream()>>>(dx, x, dy, O, HI);
  PW_CUDA_LAUNCH_CHECK();
}

template void glu_forward_cuda<float>(float*, const float*, int64_t, int64_t);
template void glu_forward_cuda<double>(double*, const double*, int64_t, int64_t);
template void glu_backward_cuda<float>(float*, const float*, const float*, int64_t, int64_t);
template void glu_backward_cuda<double>(double*, const double*, const double*, int64_t, int64_t);

}  // namespace pw
