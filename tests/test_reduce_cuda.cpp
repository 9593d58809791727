// CUDA reductions: max indices on ties, tied amax gradients, determinism. The
// forward/gradient parity of every reduce op is a row in tests/ops/reduce.cpp.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("max indices and tied amax gradients match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  // Indices (first maximum on ties) and tied amax gradients.
  Tensor x = from_vector({1, 3, 3, 2, 5, 5, 5, 0, -1, -1, -2, -1}, {3, 4}).to(Device::CUDA);
  Tensor xc = x.cpu();
  for (int64_t d : {0, 1}) {
    CAPTURE(d);
    CHECK(max(x, d).indices.to_vector() == max(xc, d).indices.to_vector());
    CHECK(max(x, d).values.to_vector() == max(xc, d).values.to_vector());
  }
  Tensor xt = x.detach().requires_grad_();
  Tensor xtc = xc.detach().requires_grad_();
  amax(xt).backward();
  amax(xtc).backward();
  CHECK(xt.grad().to_vector() == xtc.grad().to_vector());
}

TEST_CASE("cuda reductions are deterministic") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({3000, 777}, 0, 1, DType::F32, nullptr, Device::CUDA);
  for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {0}, {1}}) {
    CHECK(sum(x, dims).to_vector() == sum(x, dims).to_vector());
    CHECK(var(x, dims).to_vector() == var(x, dims).to_vector());
  }
}
