// CUDA im2col / col2im (kernels/unfold/im2col.h's layout) under unfold and conv's
// GEMM path. Plain C++ declarations; launchers run on cuda::stream(), never sync.
//
// Images j < nb of x (nb,C,H,W) map to columns of col: element (row, p) of image j,
// row = (c*KH + kh)*KW + kw, p = oh*OW + ow, sits at col[j*img_stride + row*ld + p].
//   unfold (B, C*KH*KW, L):       img_stride = C*KH*KW*L, ld = L
//   conv chunk (C*KH*KW, nb*OHW): img_stride = OHW,       ld = nb*OHW
#pragma once
#include <cstdint>

#include "kernels/unfold/im2col.h"

namespace pw {

// col <- x (zero in the padding). Every element of the nb images' columns is written.
template <class T>
void im2col_cuda(T* col, const T* x, int64_t nb, const ConvGeom& g, int64_t img_stride, int64_t ld);
// dx (nb,C,H,W) += col2im(col): one thread per input pixel gathers its taps in a fixed
// (kh, kw) order, so no atomics and the same bits every run.
template <class T>
void col2im_cuda(T* dx, const T* col, int64_t nb, const ConvGeom& g, int64_t img_stride, int64_t ld);

}  // namespace pw
