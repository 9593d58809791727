// dropout and drop_path on CUDA: the SAME masks as the CPU (same Philox
// counters), so forward and gradient match exactly (atol = rtol = 0).
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("dropout and drop_path draw the cpu's masks") {
  PW_SKIP_WITHOUT_CUDA();
  // A fresh generator per call: the CPU and the CUDA run draw from the same counters.
  run_parity_cases({
      {"dropout", {In({37, 65})}, [](const X& x) { Generator g(7); g.offset = 11; return dropout(x[0], 0.3, true, &g); },
       0, 0},
      {"dropout odd tail", {In({1001})}, [](const X& x) { Generator g(3); return dropout(x[0], 0.5, true, &g); }, 0, 0},
      {"dropout p1", {In({5, 7})}, [](const X& x) { Generator g(3); return dropout(x[0], 1.0, true, &g); }, 0, 0},
      {"drop_path", {In({9, 5, 7})}, [](const X& x) { Generator g(5); return drop_path(x[0], 0.4, true, &g); }, 0, 0},
  });
}

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
