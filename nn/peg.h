// Conditional position encoding: the Positional Encoding Generator (PEG) of CPVT
// (Chu et al. 2021, arXiv 2102.10882), used by CPVT (nn/vit.cpp, model.pos_embed: peg)
// and Twins (nn/pvt.cpp).
//
//   y = x + dwconv3x3(x)  on the patch tokens laid out as their (h, w) grid,
//
// a depthwise k x k convolution with bias and zero padding k/2, so a token's encoding
// depends on its neighbourhood and on where the zero border is: it encodes position
// and follows the input size. Leading tokens that are not on the grid (a class token)
// are passed around the convolution unchanged. Parameter names are the official
// code's and timm's (`proj.0.weight`, `proj.0.bias`: a Sequential holding one conv).
#pragma once
#include <memory>

#include "nn/layers.h"

namespace pw {

// A module whose forward also needs the (h, w) token grid of its input (B, extra + h*w, D):
// call it through run(x, h, w) so the trace (patchwork info) still records it.
struct GridModule : Module {
  int64_t grid_h = 0, grid_w = 0;  // set by run() for the forward that follows
  Tensor run(const Tensor& x, int64_t h, int64_t w) {
    grid_h = h;
    grid_w = w;
    return (*this)(x);
  }
};

// x: (B, E + h*w, D) -> same; the first E = N - h*w tokens pass through untouched.
struct PEG : GridModule {
  std::shared_ptr<Conv2d> proj;  // (D, 1, K, K) depthwise, bias
  explicit PEG(int64_t dim, int64_t kernel = 3);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "PEG"; }
};

// Tokens <-> feature maps.   x: (B, h*w, D) <-> (B, D, h, w)
Tensor tokens_to_map(const Tensor& x, int64_t h, int64_t w);
Tensor map_to_tokens(const Tensor& m);

}  // namespace pw
