#include "runtime/cuda/common.cuh"
#include "kernels/interp/interp_cuda.h"

namespace pw {

namespace {

// One thread per output element; the CPU's summation order (rows outer, columns inner).
template <class T, int NT>
__global__ void resample_fwd_kernel(T* __restrict__ y, const T* __restrict__ x, ResizeDims d,
                                    const int64_t* __restrict__ ih, const T* __restrict__ wh,
                                    const int64_t* __restrict__ iw, const T* __restrict__ ww) {
  PW_GRID_STRIDE(t, d.P * d.OH * d.OW) {
    const int64_t ow = t % d.OW, oh = (t / d.OW) % d.OH, p = t / (d.OW * d.OH);
    const T* xp = x + p * d.H * d.W;
    T acc = 0;
#pragma unroll
    for (int i = 0; i < NT; ++i) {
      const T* row = xp + ih[oh * NT + i] * d.W;
      T r = 0;
#pragma unroll
      for (int j = 0; j < NT; ++j) r += ww[ow * NT + j] * row[iw[ow * NT + j]];
      acc += wh[oh * NT + i] * r;
    }
    y[t] = acc;
  }
}

// One thread per input element: sums every output that read it, then adds once.
template <class T>
__global__ void resample_bwd_kernel(T* __restrict__ dx, const T* __restrict__ dy, ResizeDims d,
                                    const int64_t* __restrict__ rh_start, const int64_t* __restrict__ rh_out,
                                    const T* __restrict__ rh_wt, const int64_t* __restrict__ rw_start,
                                    const int64_t* __restrict__ rw_out, const T* __restrict__ rw_wt) {
  PW_GRID_STRIDE(t, d.P * d.H * d.W) {
    const int64_t w = t % d.W, h = (t / d.W) % d.H, p = t / (d.W * d.H);
    const T* dyp = dy + p * d.OH * d.OW;
    T acc = 0;
    for (int64_t a = rh_start[h]; a < rh_start[h + 1]; ++a) {
      const T* dyr = dyp + rh_out[a] * d.OW;
      T r = 0;
      for (int64_t b = rw_start[w]; b < rw_start[w + 1]; ++b) r += rw_wt[b] * dyr[rw_out[b]];
      acc += rh_wt[a] * r;
    }
    cuda::acc_add(dx[t], acc);
  }
}

}  // namespace

template <class T>
void resample_forward_cuda(T* y, const T* x, const ResizeDims& d, const int64_t* ih, const T* wh, const int64_t* iw,
                           const T* ww) {
  const int64_t n = d.P * d.OH * d.OW;
  if (n == 0) return;
  PW_CHECK(d.nt == 2 || d.nt == 4, "resample_forward_cuda: taps per axis must be 2 or 4, got ", d.nt);
  if (d.nt == 2)
    resample_fwd_kernel<T, 2><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, d, ih, wh, iw, ww);
  else
    resample_fwd_kernel<T, 4><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, d, ih, wh, iw, ww);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void resample_backward_cuda(T* dx, const T* dy, const ResizeDims& d, const int64_t* rh_start, const int64_t* rh_out,
                            const T* rh_wt, const int64_t* rw_start, const int64_t* rw_out, const T* rw_wt) {
  const int64_t n = d.P * d.H * d.W;
  if (n == 0) return;
  resample_bwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dx, dy, d, rh_start, rh_out, rh_wt,
                                                                                 rw_start, rw_out, rw_wt);
  PW_CUDA_LAUNCH_CHECK();
}

#define PW_INSTANTIATE(T)                                                                                  \
  template void resample_forward_cuda<T>(T*, const T*, const ResizeDims&, const int64_t*, const T*,       \
                                         const int64_t*, const T*);                                        \
  template void resample_backward_cuda<T>(T*, const T*, const ResizeDims&, const int64_t*, const int64_t*, \
                                          const T*, const int64_t*, const int64_t*, const T*);
PW_INSTANTIATE(float)
PW_INSTANTIATE(double)
#undef PW_INSTANTIATE

}  // namespace pw
