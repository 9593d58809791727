// Pooling, PyTorch semantics (torch.nn.functional.*). Every op pools each of the
// B*C planes independently. Output lengths follow torch:
//   O = floor((I + 2*pad - K) / S) + 1   (ceil instead with ceil_mode, but the last
//   window must start inside the input or its left padding). pad <= K/2.
#pragma once
#include <array>
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// x: (B,C,H,W) -> (B,C,OH,OW). count_include_pad=false divides by the number of
// real (unpadded) elements in each window.
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, bool ceil_mode = false,
                  bool count_include_pad = true);
// x: (B,C,L) -> (B,C,OL).
Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);
// x: (B,C,H,W) -> (B,C), the mean of each plane (adaptive_avg_pool2d to 1x1, flattened).
Tensor global_avg_pool2d(const Tensor& x);
// x: (B,C,H,W) -> (B,C,OH,OW). Padding acts as -inf; the argmax is kept for backward.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, bool ceil_mode = false);

}  // namespace pw
