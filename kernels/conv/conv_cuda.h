// CUDA launchers of conv2d (conv1d is conv2d on a height-1 image). Plain C++
// declarations; they run on cuda::stream() and never sync.
//   x: (B,C,H,W)  w: (O,C/groups,KH,KW)  bias: (O) or null  y, dy: (B,O,OH,OW)
// Dense and grouped convs: im2col (kernels/unfold/unfold_cuda.h) + cuBLAS GEMM per
// chunk of images; depthwise (groups == C > 1): direct kernels. All backward sums
// are fixed-order (gathers and block reductions, no atomics): deterministic.
#pragma once
#include <cstdint>

#include "kernels/unfold/im2col.h"

namespace pw {

// y = conv(x, w) + bias.
template <class T>
void conv_forward_cuda(T* y, const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t B, int64_t O,
                       int64_t groups);
// Forward was y = conv(x, w) + bias: dx += conv_transpose(dy, w), dw += dy (*) x, dbias += sums of dy.
// Any of dx, dw, dbias may be null.
template <class T>
void conv_backward_cuda(T* dx, T* dw, T* dbias, const T* dy, const T* x, const T* w, const ConvGeom& g, int64_t B,
                        int64_t O, int64_t groups);

#if defined(PW_HAVE_CUDNN)
// The same convolution through cuDNN (float and double; deterministic algorithms for
// the backward: CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1).
template <class T>
void conv_forward_cudnn(T* y, const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t B, int64_t O,
                        int64_t groups);
template <class T>
void conv_backward_cudnn(T* dx, T* dw, T* dbias, const T* dy, const T* x, const T* w, const ConvGeom& g, int64_t B,
                         int64_t O, int64_t groups);
#endif

}  // namespace pw
