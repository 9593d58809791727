// Resizing, exactly torch.nn.functional.interpolate(x, size=(out_h, out_w),
// mode=..., align_corners=...) with antialias=False. Used to resize ViT position
// embeddings (timm resamples them bicubically).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// x: (B,C,H,W) -> (B,C,out_h,out_w), mode='bilinear'.
Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);
// x: (B,C,H,W) -> (B,C,out_h,out_w), mode='bicubic' (Keys kernel, A = -0.75, taps
// clamped to the border). NOTE: it overshoots; outputs can leave the input's range.
Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);

}  // namespace pw
