// The elementwise family on CUDA beyond the parity rows of tests/ops/elementwise.cpp.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("elementwise: inputs on different devices are an error naming the op") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = ones({3});
  Tensor b = ones({3}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add"), pw::Error);
  CHECK_THROWS_WITH_AS(mul(b, a), doctest::Contains("different devices"), pw::Error);
}
