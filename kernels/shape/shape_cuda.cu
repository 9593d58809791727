// CUDA kernels of the copying shape ops: the strided box loop (see shape_kernels.h).
#include "autograd/dispatch.h"
#include "kernels/shape/shape_kernels.h"
#include "runtime/cuda/common.cuh"
#include "runtime/cuda/tensor_cuda.h"

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

void copy_forward_cuda(Tensor& y, const Tensor& x, const CopyPlan& c) {
  for (const Piece& pc : c.pieces) {
    const StridedPlan p = make_plan(pc.size, pc.sy, pc.sx);
    dispatch_copy(y.dtype(), c.op, [&](auto tag) {
      using T = decltype(tag);
      strided_cuda<false>(y.data<T>() + pc.oy, x.data<T>() + pc.ox, p);
    });
  }
}

void copy_backward_cuda(GradBuf dx, const Tensor& dy, const CopyPlan& c) {
  for (const Piece& pc : c.pieces) {
    const StridedPlan p = make_plan(pc.size, pc.sx, pc.sy);
    dispatch_float(dx->dtype(), c.op, [&](auto tag) {
      using T = decltype(tag);
      if (dx.accumulate) strided_cuda<true>(dx.data<T>() + pc.ox, dy.data<T>() + pc.oy, p);
      else strided_cuda<false>(dx.data<T>() + pc.ox, dy.data<T>() + pc.oy, p);
    });
  }
}

void pad_forward_cuda(Tensor& y, const Tensor& x, const CopyPlan& c, double value) {
  dispatch_copy(y.dtype(), c.op, [](auto) {});  // the dtype check, before the fill
  if (y.numel() > 0) fill_cuda(y.raw(), y.dtype(), value, y.numel());
  copy_forward_cuda(y, x, c);
}

#define PW_INST(T)                                                            \
  template void strided_cuda<false, T>(T*, const T*, const StridedPlan&);     \
  template void strided_cuda<true, T>(T*, const T*, const StridedPlan&);
PW_INST(float)
PW_INST(double)
PW_INST(int64_t)
#undef PW_INST

}  // namespace pw
