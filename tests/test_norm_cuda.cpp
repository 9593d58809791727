// The norm family on CUDA beyond the test rows' parity (tests/ops/norm.cpp):
// batch_norm's running statistics, and mixed devices.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("batch_norm updates the running statistics on cuda as on the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({6, 4, 5, 3}, 0.5, 2.0, DType::F32);
  Tensor rm = normal({4}, 0, 1, DType::F32), rv = uniform({4}, 0.5, 2.0, DType::F32);
  Tensor rmg = rm.to(Device::CUDA), rvg = rv.to(Device::CUDA);
  Tensor w = normal({4}, 1, 0.1, DType::F32), b = normal({4}, 0, 0.1, DType::F32);
  for (int step = 0; step < 3; ++step) {
    Tensor yc = batch_norm(x, w, b, rm, rv, true, 0.2);
    Tensor yg = batch_norm(x.to(Device::CUDA), w.to(Device::CUDA), b.to(Device::CUDA), rmg, rvg, true, 0.2);
    check_close(yg.to_vector(), yc.to_vector(), 1e-5, 1e-4, "batch_norm y");
  }
  check_close(rmg.to_vector(), rm.to_vector(), 1e-6, 1e-5, "running_mean");
  check_close(rvg.to_vector(), rv.to_vector(), 1e-6, 1e-5, "running_var");
}

TEST_CASE("norm ops reject mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({4, 6}, 0, 1).to(Device::CUDA), w = ones({6});
  CHECK_THROWS_WITH_AS(layer_norm(x, w, Tensor()), doctest::Contains("layer_norm"), pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, w, Tensor(), Tensor(), Tensor(), true), doctest::Contains("batch_norm"), pw::Error);
}
