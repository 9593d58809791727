// Sliding-window patch extraction (torch.nn.functional.unfold).
#pragma once
#include <array>
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// x (B,C,H,W) -> (B, C*KH*KW, L), L = OH*OW output positions; row (c*KH + kh)*KW + kw
// holds channel c under kernel tap (kh,kw), zero in the padding. Backward is fold (col2im).
Tensor unfold(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> dilation = {1, 1},
              std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> stride = {1, 1});

}  // namespace pw
