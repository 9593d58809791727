// CUDA specifics of the pooling family: NaN propagation as on the CPU, and the
// CPU's input checks. CPU/CUDA parity is run from the test rows
// (tests/ops/pool.cpp, test_ops_cuda).
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("max_pool2d on cuda propagates NaN as the cpu does") {
  PW_SKIP_WITHOUT_CUDA();
  std::vector<double> v(2 * 5 * 5);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i % 6) - 2.5;
  v[7] = std::nan("");
  Tensor x = from_vector(v, {1, 2, 5, 5}, DType::F32);
  Tensor yc = max_pool2d(x, {2, 2}, {1, 1});
  Tensor yg = max_pool2d(x.to(Device::CUDA), {2, 2}, {1, 1});
  std::vector<double> a = yc.to_vector(), b = yg.to_vector();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    if (std::isnan(a[i])) CHECK(std::isnan(b[i]));
    else CHECK(a[i] == b[i]);
  }
}

TEST_CASE("pooling on cuda keeps the cpu's input checks") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({2, 3, 5, 5}, 0, 1).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {3, 3}, {1, 1}, {2, 2}), doctest::Contains("avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {7, 7}, {1, 1}), doctest::Contains("max_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool1d(x, 3, 1), doctest::Contains("avg_pool1d"), pw::Error);
}
