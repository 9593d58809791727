// CPU/CUDA parity of the resizing ops (interpolate_bilinear, interpolate_bicubic):
// forward, the input gradient (gathered, no atomics) and exact accumulation of a
// second backward. Up- and down-sampling, odd sizes, identity and 1-pixel sizes,
// align_corners both ways.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

static OpFn bilinear(int64_t oh, int64_t ow, bool ac) {
  return [=](const X& x) { return interpolate_bilinear(x[0], oh, ow, ac); };
}
static OpFn bicubic(int64_t oh, int64_t ow, bool ac) {
  return [=](const X& x) { return interpolate_bicubic(x[0], oh, ow, ac); };
}

TEST_CASE("resizing matches the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"bilinear up 5x7->11x13", {In({2, 3, 5, 7})}, bilinear(11, 13, false)},
      {"bilinear up 5x7->11x13 align", {In({2, 3, 5, 7})}, bilinear(11, 13, true)},
      {"bilinear down 13x11->5x4", {In({2, 3, 13, 11})}, bilinear(5, 4, false)},
      {"bilinear down 13x11->5x4 align", {In({2, 3, 13, 11})}, bilinear(5, 4, true)},
      {"bilinear mixed 6x9->9x5", {In({1, 2, 6, 9})}, bilinear(9, 5, false)},
      {"bilinear identity", {In({1, 3, 5, 7})}, bilinear(5, 7, false)},
      {"bilinear to 1x1 align", {In({1, 2, 5, 7})}, bilinear(1, 1, true)},
      {"bilinear from 1x1", {In({1, 2, 1, 1})}, bilinear(3, 4, false)},
      {"bilinear large", {In({4, 8, 31, 33})}, bilinear(64, 47, false)},
      {"bicubic up 5x7->11x13", {In({2, 3, 5, 7})}, bicubic(11, 13, false)},
      {"bicubic up 5x7->11x13 align", {In({2, 3, 5, 7})}, bicubic(11, 13, true)},
      {"bicubic down 13x11->5x4", {In({2, 3, 13, 11})}, bicubic(5, 4, false)},
      {"bicubic down 13x11->5x4 align", {In({2, 3, 13, 11})}, bicubic(5, 4, true)},
      {"bicubic mixed 6x9->9x5 align", {In({1, 2, 6, 9})}, bicubic(9, 5, true)},
      {"bicubic identity", {In({1, 3, 5, 7})}, bicubic(5, 7, false)},
      {"bicubic tiny 2x3->7x5", {In({1, 2, 2, 3})}, bicubic(7, 5, false)},
      // ViT position-embedding resize (timm): 14x14 -> 24x24 of 768 channels.
      {"bicubic pos-embed 14->24", {In({1, 768, 14, 14})}, bicubic(24, 24, false)},
  });
}

TEST_CASE("resizing on cuda keeps the cpu's input checks") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({2, 3, 5, 5}, 0, 1).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(interpolate_bilinear(x, 0, 3), doctest::Contains("interpolate_bilinear"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bicubic(x.reshape({6, 5, 5}), 3, 3), doctest::Contains("interpolate_bicubic"), pw::Error);
}
