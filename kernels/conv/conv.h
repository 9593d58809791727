// Convolutions (cross-correlation, as in torch) with autograd.
#pragma once
#include <array>
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// x (B,C,H,W), w (O,C/groups,KH,KW), b (O) or an undefined Tensor -> (B,O,OH,OW),
// OH = (H + 2*padding[0] - dilation[0]*(KH-1) - 1) / stride[0] + 1, likewise OW.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(), std::array<int64_t, 2> stride = {1, 1},
              std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
              int64_t groups = 1);

// x (B,C,L), w (O,C/groups,K), b (O) or undefined -> (B,O,OL); conv2d on a height-1 image.
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(), int64_t stride = 1, int64_t padding = 0,
              int64_t dilation = 1, int64_t groups = 1);

// Which implementation runs conv2d/conv1d on CUDA tensors (process-wide; the CPU
// ignores it). Native: our im2col + cuBLAS and depthwise kernels. Cudnn: cuDNN with
// deterministic backward algorithms; set_conv_engine(Cudnn) throws pw::Error in a
// build without cuDNN (PW_HAVE_CUDNN). A graph keeps the engine of its forward.
enum class ConvEngine { Native, Cudnn };
void set_conv_engine(ConvEngine e);
ConvEngine conv_engine();

namespace detail {
// Elements of im2col buffer per batch chunk (dense/grouped conv). Tests shrink it to
// exercise the multi-chunk path; it never changes results beyond float rounding.
int64_t& conv_col_budget();
}  // namespace detail

}  // namespace pw
