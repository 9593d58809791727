// The kernels of the resizing ops (interp.h): one declaration per kernel and
// device; the dispatch rows are in interp.cpp. Tables: interp_taps.h. Backward
// kernels keep the GradBuf contract (autograd/function.h): write a fresh buffer,
// add otherwise; both gather (every dx element sums all its contributions, then is
// written or added to once): exact accumulation, no atomics, thread-independent.
#pragma once
#include <cstdint>

#include "autograd/function.h"

namespace pw {

// Geometry: P planes of (H,W) resized to (OH,OW).
struct ResizeGeom {
  int64_t P = 0, H = 0, W = 0, OH = 0, OW = 0;
  bool align_corners = false, cubic = false;
};

// y[oh,ow] = sum_ij wh[oh,i] ww[ow,j] x[ih[oh,i], iw[ow,j]] over the axes' taps.   x: (P,H,W)  y: (P,OH,OW)
void resize_forward_cpu(Tensor& y, const Tensor& x, const ResizeGeom& g);
void resize_forward_cuda(Tensor& y, const Tensor& x, const ResizeGeom& g);
// Forward was the above: dx[h,w] (+)= sum over readers (oh,a) of row h and (ow,b) of column w of a*b*dy[oh,ow].
// dx: (P,H,W)  dy: (P,OH,OW)
void resize_backward_cpu(GradBuf dx, const Tensor& dy, const ResizeGeom& g);
void resize_backward_cuda(GradBuf dx, const Tensor& dy, const ResizeGeom& g);

}  // namespace pw
