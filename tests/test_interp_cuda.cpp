// CUDA specifics of the resizing ops: the CPU's input checks. CPU/CUDA parity
// is run from the test rows (tests/ops/interp.cpp, test_ops_cuda).
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("resizing on cuda keeps the cpu's input checks") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({2, 3, 5, 5}, 0, 1).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(interpolate_bilinear(x, 0, 3), doctest::Contains("interpolate_bilinear"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bicubic(x.reshape({6, 5, 5}), 3, 3), doctest::Contains("interpolate_bicubic"), pw::Error);
}
