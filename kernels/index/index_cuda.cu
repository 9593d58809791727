// Index ops on CUDA (see index_cuda.h).
#include "runtime/cuda/common.cuh"
#include "kernels/index/index_cuda.h"

namespace pw {

namespace {

template <class T>
__global__ void index_select_fwd_kernel(T* y, const T* __restrict__ x, const int64_t* idx, int64_t O, int64_t n,
                                        int64_t J, int64_t K) {
  PW_GRID_STRIDE(t, O * J * K) {
    const int64_t k = t % K, oj = t / K, j = oj % J, o = oj / J;
    y[t] = x[(o * n + idx[j]) * K + k];
  }
}

template <class T>
__global__ void index_select_bwd_kernel(T* dx, const T* __restrict__ dy, const int64_t* order, const int64_t* hit,
                                        const int64_t* hstart, int64_t O, int64_t n, int64_t J, int64_t K,
                                        int64_t H) {
  PW_GRID_STRIDE(t, O * H * K) {
    const int64_t k = t % K, oh = t / K, h = oh % H, o = oh / H;
    const int64_t s0 = hstart[h], s1 = hstart[h + 1];
    T acc = dy[(o * J + order[s0]) * K + k];
    for (int64_t s = s0 + 1; s < s1; ++s) acc += dy[(o * J + order[s]) * K + k];
    dx[(o * n + hit[h]) * K + k] += acc;
  }
}

template <class T>
__global__ void gather_fwd_kernel(T* y, const T* __restrict__ x, const int64_t* idx, const int64_t* xo,
                                  const int64_t* xi, int64_t O, int64_t J, int64_t K, int64_t sd) {
  PW_GRID_STRIDE(r, O * J * K) {
    const int64_t k = r % K, o = r / K / J;
    y[r] = x[xo[o] + idx[r] * sd + xi[k]];
  }
}

template <class T>
__global__ void gather_bwd_kernel(T* dx, const T* __restrict__ dy, const int64_t* idx, const int64_t* xo,
                                  const int64_t* xi, int64_t O, int64_t J, int64_t K, int64_t n, int64_t sd) {
  PW_GRID_STRIDE(t, O * n * K) {
    const int64_t k = t % K, ov = t / K, v = ov % n, o = ov / n;
    T acc = T(0);
    bool any = false;  // the CPU's order: the first contribution, then += the rest in j order
    for (int64_t j = 0; j < J; ++j) {
      const int64_t r = (o * J + j) * K + k;
      if (idx[r] == v) {
        acc = any ? acc + dy[r] : dy[r];
        any = true;
      }
    }
    if (any) dx[xo[o] + v * sd + xi[k]] += acc;
  }
}

}  // namespace

template <class T>
void index_select_forward_cuda(T* y, const T* x, const int64_t* idx, int64_t O, int64_t n, int64_t J, int64_t K) {
  if (O * J * K == 0) return;
  index_select_fwd_kernel<T><<<cuda::grid_for(O * J * K), cuda::kBlock, 0, cuda::stream()>>>(y, x, idx, O, n, J, K);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T>
void index_select_backward_cuda(T* dx, const T* dy, const int64_t* order, const int64_t* hit, const int64_t* hstart,
                                int64_t O, int64_t n, int64_t J, int64_t K, int64_t H) {
  if (O * H * K == 0) return;
  index_select_bwd_kernel<T><<<cuda::grid_for(O * H * K), cuda::kBlock, 0, cuda::stream()>>>(dx, dy, order, hit,
                                                                                             hstart, O, n, J, K, H);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T>
void gather_forward_cuda(T* y, const T* x, const int64_t* idx, const int64_t* xo, const int64_t* xi, int64_t O,
                         int64_t J, int64_t K, int64_t sd) {
  if (O * J * K == 0) return;
  gather_fwd_kernel<T><<<cuda::grid_for(O * J * K), cuda::kBlock, 0, cuda::stream()>>>(y, x, idx, xo, xi, O, J, K, sd);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T>
void gather_backward_cuda(T* dx, const T* dy, const int64_t* idx, const int64_t* xo, const int64_t* xi, int64_t O,
                          int64_t J, int64_t K, int64_t n, int64_t sd) {
  if (O * n * K == 0 || J == 0) return;
  gather_bwd_kernel<T><<<cuda::grid_for(O * n * K), cuda::kBlock, 0, cuda::stream()>>>(dx, dy, idx, xo, xi, O, J, K, n,
                                                                                       sd);
  PW_CUDA_LAUNCH_CHECK();
}

template void index_select_forward_cuda<float>(float*, const float*, const int64_t*, int64_t, int64_t, int64_t, int64_t);
template void index_select_forward_cuda<double>(double*, const double*, const int64_t*, int64_t, int64_t, int64_t,
                                                int64_t);
template void index_select_forward_cuda<int64_t>(int64_t*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                                                 int64_t);
template void gather_forward_cuda<float>(float*, const float*, const int64_t*, const int64_t*, const int64_t*, int64_t,
                                         int64_t, int64_t, int64_t);
template void gather_forward_cuda<double>(double*, const double*, const int64_t*, const int64_t*, const int64_t*,
                                          int64_t, int64_t, int64_t, int64_t);
template void gather_forward_cuda<int64_t>(int64_t*, const int64_t*, const int64_t*, const int64_t*, const int64_t*,
                                           int64_t, int64_t, int64_t, int64_t);
#define PW_INST(T)                                                                                                \
  template void index_select_backward_cuda<T>(T*, const T*, const int64_t*, const int64_t*, const int64_t*, int64_t, \
                                              int64_t, int64_t, int64_t, int64_t);                                 \
  template void gather_backward_cuda<T>(T*, const T*, const int64_t*, const int64_t*, const int64_t*, int64_t,     \
                                        int64_t, int64_t, int64_t, int64_t);
PW_INST(float)
PW_INST(double)
#undef PW_INST

}  // namespace pw
