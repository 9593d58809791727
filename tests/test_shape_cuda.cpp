// The shape ops on CUDA: i64 copies and mixed devices. The forward/gradient parity
// of every copying shape op is a row in tests/ops/shape.cpp.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("shape ops copy i64 tensors on cuda") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = from_indices({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor g = a.to(Device::CUDA);
  CHECK(permute(g, {1, 0}).to_vector() == permute(a, {1, 0}).to_vector());
  CHECK(concat({g, g}, 0).to_vector() == concat({a, a}, 0).to_vector());
  CHECK(pad(g, {1, 1}, 7).to_vector() == pad(a, {1, 1}, 7).to_vector());
  CHECK(expand(g.reshape({2, 1, 3}), {2, 4, 3}).to_vector() == expand(a.reshape({2, 1, 3}), {2, 4, 3}).to_vector());
}

TEST_CASE("concat rejects mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = normal({2, 3}, 0, 1);
  CHECK_THROWS_WITH_AS(concat({a, a.to(Device::CUDA)}, 0), doctest::Contains("concat"), pw::Error);
}
