// The index ops on CUDA: bad indices and mixed devices. The forward/gradient parity
// of embedding, index_select and gather is a row in tests/ops/index.cpp.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("index ops on cuda reject bad indices and mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor w = normal({5, 3}, 0, 1).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(embedding(w, from_indices({0, 5}, {2}).to(Device::CUDA)), doctest::Contains("embedding"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(embedding(w, from_indices({0, 1}, {2})), doctest::Contains("embedding"), pw::Error);
  CHECK_THROWS_WITH_AS(gather(w, 0, from_indices({0, 9}, {2, 1}).to(Device::CUDA)), doctest::Contains("gather"),
                       pw::Error);
}
