// dropout on CUDA with the default generator: the SAME masks as the CPU (same
// Philox counters). The per-op parity cases are test rows (tests/ops/dropout.cpp).
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("dropout with the default generator gives the cpu's mask, and some elements drop") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({64, 129}, 0, 1);
  manual_seed(42);
  Tensor yc = dropout(x, 0.25, true);
  manual_seed(42);
  Tensor yg = dropout(x.to(Device::CUDA), 0.25, true);
  const std::vector<double> a = yc.to_vector(), b = yg.to_vector();
  CHECK(a == b);
  int64_t zeros_ = 0;
  for (double v : b) zeros_ += v == 0.0;
  CHECK(zeros_ > (int64_t)b.size() / 8);
  CHECK(zeros_ < (int64_t)b.size() / 2);
}
