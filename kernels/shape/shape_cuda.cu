// The strided box loop on CUDA (see strided_cuda.h).
#include "runtime/cuda/common.cuh"
#include "kernels/shape/strided_cuda.h"

namespace pw {

namespace {

constexpr int kMaxStridedDims = 16;  // walked dims, and reduction dims, each (after coalescing)

// A StridedPlan by value, for the kernel's parameter space.
struct StridedDesc {
  int nd = 0, nr = 0;
  int64_t size[kMaxStridedDims], sa[kMaxStridedDims], sb[kMaxStridedDims];  // walked dims, outer first
  int64_t rsize[kMaxStridedDims], rsb[kMaxStridedDims];                     // reduction dims, outer first
  int64_t n_out = 1, n_red = 1;  // elements of the walked and of the reduction space
};

// One thread per walked element t: a[oa(t)] (op)= sum over the reduction dims of b.
template <bool Acc, class T>
__global__ void strided_kernel(T* a, const T* __restrict__ b, StridedDesc d) {
  PW_GRID_STRIDE(t, d.n_out) {
    int64_t oa = 0, ob = 0, r = t;
    for (int k = d.nd - 1; k >= 0; --k) {
      const int64_t q = r / d.size[k], i = r - q * d.size[k];
      oa += i * d.sa[k];
      ob += i * d.sb[k];
      r = q;
    }
    T v;
    if (d.nr == 0) {
      v = b[ob];
    } else {
      v = T(0);  // the CPU's order: acc = 0, then += over the reduction index, row-major
      for (int64_t j = 0; j < d.n_red; ++j) {
        int64_t off = 0, q = j;
        for (int k = d.nr - 1; k >= 0; --k) {
          const int64_t qq = q / d.rsize[k];
          off += (q - qq * d.rsize[k]) * d.rsb[k];
          q = qq;
        }
        v += b[ob + off];
      }
    }
    if constexpr (Acc) a[oa] += v;
    else a[oa] = v;
  }
}

}  // namespace

template <bool Acc, class T>
void strided_cuda(T* a, const T* b, const StridedPlan& p) {
  if (p.numel == 0) return;
  StridedDesc d;
  PW_CHECK(p.size.size() <= (size_t)kMaxStridedDims && p.rsize.size() <= (size_t)kMaxStridedDims,
           "strided copy: ", p.size.size(), " + ", p.rsize.size(), " dims after coalescing; the CUDA kernel takes ",
           kMaxStridedDims, " of each");
  d.nd = (int)p.size.size();
  d.nr = (int)p.rsize.size();
  for (int k = 0; k < d.nd; ++k) {
    d.size[k] = p.size[k];
    d.sa[k] = p.sa[k];
    d.sb[k] = p.sb[k];
    d.n_out *= p.size[k];
  }
  for (int k = 0; k < d.nr; ++k) {
    d.rsize[k] = p.rsize[k];
    d.rsb[k] = p.rsb[k];
    d.n_red *= p.rsize[k];
  }
  strided_kernel<Acc, T><<<cuda::grid_for(d.n_out), cuda::kBlock, 0, cuda::stream()>>>(a, b, d);
  PW_CUDA_LAUNCH_CHECK();
}

#define PW_INST(T)                                                            \
  template void strided_cuda<false, T>(T*, const T*, const StridedPlan&);     \
  template void strided_cuda<true, T>(T*, const T*, const StridedPlan&);
PW_INST(float)
PW_INST(double)
PW_INST(int64_t)
#undef PW_INST

}  // namespace pw
