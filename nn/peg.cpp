#include "nn/peg.h"

namespace pw {

Tensor tokens_to_map(const Tensor& x, int64_t h, int64_t w) {
  PW_CHECK(x.dim() == 3 && x.size(1) == h * w, "tokens_to_map: expected tokens (B, ", h, "*", w, ", D), got ",
           x.str());
  return transpose(x, 1, 2).reshape({x.size(0), x.size(2), h, w});
}

Tensor map_to_tokens(const Tensor& m) {
  PW_CHECK(m.dim() == 4, "map_to_tokens: expected a feature map (B,D,h,w), got ", m.str());
  return transpose(m.reshape({m.size(0), m.size(1), m.size(2) * m.size(3)}), 1, 2);
}

PEG::PEG(int64_t dim, int64_t kernel) {
  PW_CHECK(kernel % 2 == 1, "PEG: the kernel size must be odd (same-size output), got ", kernel);
  proj = add_module("proj.0", std::make_shared<Conv2d>(dim, dim, kernel, 1, kernel / 2, /*groups=*/dim));
}

Tensor PEG::forward(const Tensor& x) {
  const int64_t h = grid_h, w = grid_w;
  PW_CHECK(x.dim() == 3 && h > 0 && w > 0 && x.size(1) >= h * w, "PEG: expected tokens (B, E + ", h, "*", w,
           ", D) with the grid set by run(x, h, w), got ", x.str());
  const int64_t E = x.size(1) - h * w;
  Tensor grid = E ? narrow(x, 1, E, h * w) : x;
  Tensor y = grid + map_to_tokens((*proj)(tokens_to_map(grid, h, w)));
  return E ? concat({narrow(x, 1, 0, E), y}, 1) : y;
}

}  // namespace pw
