// The kernels of unfold, one declaration per kernel and device; the dispatch
// row is in unfold.cpp. Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise.
//
// Below them, the raw CUDA im2col / col2im (kernels/unfold/im2col.h's layout)
// under unfold and conv's GEMM path; launchers run on cuda::stream(), never sync.
// Images j < nb of x (nb,C,H,W) map to columns of col: element (row, p) of image j,
// row = (c*KH + kh)*KW + kw, p = oh*OW + ow, sits at col[j*img_stride + row*ld + p].
//   unfold (B, C*KH*KW, L):       img_stride = C*KH*KW*L, ld = L
//   conv chunk (C*KH*KW, nb*OHW): img_stride = OHW,       ld = nb*OHW
#pragma once
#include <cstdint>

#include "autograd/function.h"
#include "kernels/unfold/im2col.h"

namespace pw {

// y = unfold(x): row (c*KH + kh)*KW + kw holds channel c under tap (kh,kw), zero in the padding.
// x: (B,C,H,W)  y: (B, C*KH*KW, OH*OW)
void unfold_forward_cpu(Tensor& y, const Tensor& x, const ConvGeom& g);
void unfold_forward_cuda(Tensor& y, const Tensor& x, const ConvGeom& g);
// Forward was y = unfold(x).  dx (+)= fold(dy) (col2im); every dx element is written.
// dx: (B,C,H,W)  dy: (B, C*KH*KW, OH*OW)
void unfold_backward_cpu(GradBuf dx, const Tensor& dy, const ConvGeom& g);
void unfold_backward_cuda(GradBuf dx, const Tensor& dy, const ConvGeom& g);

// --- Raw CUDA launchers (device pointers; conv uses them too) ---

// col <- x (zero in the padding). Every element of the nb images' columns is written.
template <class T>
void im2col_cuda(T* col, const T* x, int64_t nb, const ConvGeom& g, int64_t img_stride, int64_t ld);
// dx (nb,C,H,W) += col2im(col) (= with accumulate false): one thread per input pixel gathers
// its taps in a fixed (kh, kw) order, so no atomics and the same bits every run.
template <class T>
void col2im_cuda(T* dx, const T* col, int64_t nb, const ConvGeom& g, int64_t img_stride, int64_t ld,
                 bool accumulate = true);

}  // namespace pw
