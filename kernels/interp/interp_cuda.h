// CUDA launchers of the resizing ops (interp.h). Plain C++ declarations; they run
// on cuda::stream() and never sync.
//
// Both modes are separable: along each axis every output index reads NT input taps
// (bilinear 2, bicubic 4). The caller builds each axis's tap table on the host with
// interp_math.h, exactly as the CPU path does, and uploads it, so the CUDA kernels
// use bit-identical indices and weights. Backward gathers through the inverted
// tables (one thread per input pixel, fixed order, added once): no atomics, the
// same bits every run.
#pragma once
#include <cstdint>

namespace pw {

// P planes of (H,W) resized to (OH,OW); nt taps per axis (2 or 4).
struct ResizeDims {
  int64_t P, H, W, OH, OW;
  int nt;
};

// y[oh,ow] = sum_ij wh[oh,i] ww[ow,j] x[ih[oh,i], iw[ow,j]].
//   x: (P,H,W)  y: (P,OH,OW)  ih, wh: (OH,nt)  iw, ww: (OW,nt)   (all device pointers)
template <class T>
void resample_forward_cuda(T* y, const T* x, const ResizeDims& d, const int64_t* ih, const T* wh, const int64_t* iw,
                           const T* ww);
// forward was above; dx[h,w] += sum over readers (oh,a) of row h and (ow,b) of column w of a*b*dy[oh,ow].
//   dx: (P,H,W)  dy: (P,OH,OW)
//   rh_start: (H+1), rh_out, rh_wt: (OH*nt): the outputs rh_out[rh_start[h] .. rh_start[h+1]) read row h
//   with weights rh_wt (same for columns with W, OW).
template <class T>
void resample_backward_cuda(T* dx, const T* dy, const ResizeDims& d, const int64_t* rh_start, const int64_t* rh_out,
                            const T* rh_wt, const int64_t* rw_start, const int64_t* rw_out, const T* rw_wt);

}  // namespace pw
