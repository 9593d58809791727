// The kernels of conv2d / conv1d (conv.h; conv1d is conv2d on a height-1 image):
// one declaration per kernel and device; the dispatch rows are in conv.cpp.
//   x: (B,C,H,W)  w: (O,C/groups,KH,KW)  b: (O) or undefined  y, dy: (B,O,OH,OW)
// Dense and grouped convs are im2col + GEMM per chunk of images (CPU: oneDNN; CUDA:
// cuBLAS, or cuDNN when the forward ran with ConvEngine::Cudnn); depthwise convs
// (groups == C > 1) run direct kernels. Backward kernels keep the GradBuf contract
// (autograd/function.h): write a fresh buffer, add otherwise. All backward sums
// are fixed-order (no atomics): deterministic.
#pragma once
#include <cstdint>

#include "autograd/function.h"
#include "kernels/conv/conv.h"
#include "kernels/unfold/im2col.h"

namespace pw {

struct ConvShape {
  ConvGeom g;               // one image: g.C = all input channels, g.OH x g.OW output
  int64_t B = 0, O = 0, groups = 1;
  ConvEngine engine = ConvEngine::Native;  // CUDA only: the engine of the forward (a graph keeps it)
  int64_t Cg() const { return g.C / groups; }      // input channels per group
  int64_t Og() const { return O / groups; }        // output channels per group
  int64_t rows() const { return Cg() * g.kk(); }   // GEMM K per group: one weight row
};

// y = conv(x, w) + b.
void conv_forward_cpu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const ConvShape& s);
void conv_forward_cuda(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const ConvShape& s);
// Forward was y = conv(x, w) + b: dx (+)= conv_transpose(dy, w), dw (+)= dy (*) x, db (+)= sums of dy.
// Any buffer may be empty.
void conv_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                       const ConvShape& s);
void conv_backward_cuda(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const ConvShape& s);

#if defined(PW_HAVE_CUDNN)
// The same convolution through cuDNN (conv_cudnn.cu), called by the CUDA kernels above
// for ConvEngine::Cudnn (float and double; deterministic backward algorithms
// CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1).
template <class T>
void conv_forward_cudnn(T* y, const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t B, int64_t O,
                        int64_t groups);
// acc_*: beta = 1 (add into the buffer) or 0 (write it).
template <class T>
void conv_backward_cudnn(T* dx, bool acc_x, T* dw, bool acc_w, T* dbias, bool acc_b, const T* dy, const T* x,
                         const T* w, const ConvGeom& g, int64_t B, int64_t O, int64_t groups);
#endif

}  // namespace pw
