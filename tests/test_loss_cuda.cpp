// CPU/CUDA parity of the losses (cross_entropy with label smoothing, cross_entropy_soft).
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("cross_entropy and cross_entropy_soft match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"cross_entropy", {In({5, 7}), In::index({5}, 7)}, [](const X& x) { return cross_entropy(x[0], x[1]); }},
      {"cross_entropy ls0.1", {In({5, 7}), In::index({5}, 7)},
       [](const X& x) { return cross_entropy(x[0], x[1], 0.1); }},
      {"cross_entropy ls1", {In({3, 5}), In::index({3}, 5)}, [](const X& x) { return cross_entropy(x[0], x[1], 1.0); }},
      {"cross_entropy large", {In({257, 1000}), In::index({257}, 1000)},
       [](const X& x) { return cross_entropy(x[0] * 3.0, x[1], 0.1); }},
      {"cross_entropy_soft", {In({5, 7}), In({5, 7}, Domain::Positive)},
       [](const X& x) { return cross_entropy_soft(x[0], x[1]); }},
      {"cross_entropy_soft large", {In({129, 1000}), In({129, 1000}, Domain::Positive)},
       [](const X& x) { return cross_entropy_soft(x[0], x[1]); }, 1e-4, 1e-4},
  });
}

TEST_CASE("cross_entropy on cuda rejects bad labels and mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({3, 4}, 0, 1).to(Device::CUDA);
  Tensor bad = from_indices({0, 4, 1}, {3}).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(cross_entropy(x, bad), doctest::Contains("cross_entropy"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, from_indices({0, 1, 2}, {3})), doctest::Contains("cross_entropy"), pw::Error);
}
