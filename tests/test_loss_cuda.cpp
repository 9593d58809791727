// The losses on CUDA beyond the test rows' parity (tests/ops/loss.cpp): bad labels
// and mixed devices.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("cross_entropy on cuda rejects bad labels and mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({3, 4}, 0, 1).to(Device::CUDA);
  Tensor bad = from_indices({0, 4, 1}, {3}).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(cross_entropy(x, bad), doctest::Contains("cross_entropy"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, from_indices({0, 1, 2}, {3})), doctest::Contains("cross_entropy"), pw::Error);
}
