// conv2d through cuDNN (set_conv_engine(ConvEngine::Cudnn)): the optional engine,
// and the reference the native kernels are compared with on a GPU.
#if defined(PW_HAVE_CUDNN)
#include <cudnn.h>

#include <type_traits>

#include "kernels/conv/conv_kernels.h"
#include "runtime/cuda/common.cuh"
#include "kernels/gemm/precision.h"

#define PW_CUDNN_CHECK(call)                                                                        \
  do {                                                                                              \
    cudnnStatus_t pw_st_ = (call);                                                                  \
    if (pw_st_ != CUDNN_STATUS_SUCCESS)                                                             \
      ::pw::detail::fail(__FILE__, __LINE__, "cuDNN call ", #call, " failed: ", cudnnGetErrorString(pw_st_)); \
  } while (0)

namespace pw {

namespace {

cudnnHandle_t dnn() {
  static cudnnHandle_t h = [] {
    cuda::require("conv2d (cuDNN)");
    cudnnHandle_t t = nullptr;
    PW_CUDNN_CHECK(cudnnCreate(&t));
    PW_CUDNN_CHECK(cudnnSetStream(t, cuda::stream()));
    return t;
  }();
  return h;
}

int to_int(int64_t v) {
  PW_CHECK(v >= 0 && v <= 0x7fffffff, "conv2d (cuDNN): size ", v, " does not fit cuDNN's int");
  return (int)v;
}

// Descriptors of one conv call, destroyed at scope exit.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  template <class T>
  Descs(const ConvGeom& g, int64_t B, int64_t O, int64_t groups, T) {
    const cudnnDataType_t dt = std::is_same_v<T, double> ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    PW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    PW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    PW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&b));
    PW_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    PW_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    PW_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, to_int(B), to_int(g.C), to_int(g.H), to_int(g.W)));
    PW_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, to_int(B), to_int(O), to_int(g.OH), to_int(g.OW)));
    PW_CUDNN_CHECK(cudnnSetTensor4dDescriptor(b, CUDNN_TENSOR_NCHW, dt, 1, to_int(O), 1, 1));
    PW_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, to_int(O), to_int(g.C / groups), to_int(g.KH),
                                              to_int(g.KW)));
    PW_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, to_int(g.PH), to_int(g.PW), to_int(g.SH), to_int(g.SW),
                                                   to_int(g.DH), to_int(g.DW), CUDNN_CROSS_CORRELATION, dt));
    PW_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, to_int(groups)));
    // FP32 precision: no tensor-core tf32 (cuDNN's default math would allow it).
    // NOTE: BF16 precision runs cuDNN in tf32 (cuDNN has no fp32-in/bf16-multiply mode here).
    const bool fma = std::is_same_v<T, double> || matmul_precision() == Precision::FP32;
    PW_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, fma ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
  }
  ~Descs() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (b) cudnnDestroyTensorDescriptor(b);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

struct Workspace {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Workspace(size_t n) : bytes(n) {
    if (n) p = cuda::alloc(n);
  }
  ~Workspace() {
    if (p) cuda::free(p, bytes);
  }
};

}  // namespace

template <class T>
void conv_forward_cudnn(T* y, const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t B, int64_t O,
                        int64_t groups) {
  if (B * O * g.OH * g.OW == 0) return;
  Descs d(g, B, O, groups, T{});
  const auto algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t ws = 0;
  PW_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(dnn(), d.x, d.w, d.conv, d.y, algo, &ws));
  Workspace wsp(ws);
  const T one = 1, zero = 0;
  PW_CUDNN_CHECK(cudnnConvolutionForward(dnn(), &one, d.x, x, d.w, w, d.conv, algo, wsp.p, ws, &zero, d.y, y));
  if (bias) PW_CUDNN_CHECK(cudnnAddTensor(dnn(), &one, d.b, bias, &one, d.y, y));
}

template <class T>
void conv_backward_cudnn(T* dx, bool acc_x, T* dw, bool acc_w, T* dbias, bool acc_b, const T* dy, const T* x,
                         const T* w, const ConvGeom& g, int64_t B, int64_t O, int64_t groups) {
  if (B * O * g.OH * g.OW == 0) return;  // the caller (conv_backward_cuda) zeroes fresh buffers
  Descs d(g, B, O, groups, T{});
  const T one = 1, zero = 0;  // beta: 1 adds into a gradient buffer, 0 writes a fresh one (GradBuf)
  if (dx) {
    const auto algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic
    size_t ws = 0;
    PW_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn(), d.w, d.y, d.conv, d.x, algo, &ws));
    Workspace wsp(ws);
    PW_CUDNN_CHECK(cudnnConvolutionBackwardData(dnn(), &one, d.w, w, d.y, dy, d.conv, algo, wsp.p, ws, acc_x ? &one : &zero, d.x, dx));
  }
  if (dw) {
    const auto algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic
    size_t ws = 0;
    PW_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn(), d.x, d.y, d.conv, d.w, algo, &ws));
    Workspace wsp(ws);
    PW_CUDNN_CHECK(cudnnConvolutionBackwardFilter(dnn(), &one, d.x, x, d.y, dy, d.conv, algo, wsp.p, ws, acc_w ? &one : &zero, d.w, dw));
  }
  if (dbias) PW_CUDNN_CHECK(cudnnConvolutionBackwardBias(dnn(), &one, d.y, dy, acc_b ? &one : &zero, d.b, dbias));
}

template void conv_forward_cudnn<float>(float*, const float*, const float*, const float*, const ConvGeom&, int64_t,
                                        int64_t, int64_t);
template void conv_forward_cudnn<double>(double*, const double*, const double*, const double*, const ConvGeom&,
                                         int64_t, int64_t, int64_t);
template void conv_backward_cudnn<float>(float*, bool, float*, bool, float*, bool, const float*, const float*,
                                         const float*, const ConvGeom&, int64_t, int64_t, int64_t);
template void conv_backward_cudnn<double>(double*, bool, double*, bool, double*, bool, const double*, const double*,
                                          const double*, const ConvGeom&, int64_t, int64_t, int64_t);

}  // namespace pw
#endif  // PW_HAVE_CUDNN
