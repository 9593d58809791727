// CPU/CUDA parity of the reduce family, forward and gradient, and determinism.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("sum, mean and var match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"sum all", {In({37, 65})}, [](const X& x) { return sum(x[0]); }},
      {"sum all large", {In({1 << 20})}, [](const X& x) { return sum(x[0]); }},
      {"sum last", {In({37, 65})}, [](const X& x) { return sum(x[0], {-1}); }},
      {"sum first", {In({37, 65})}, [](const X& x) { return sum(x[0], {0}); }},
      {"sum cols large", {In({4096, 3})}, [](const X& x) { return sum(x[0], {0}); }},
      {"sum middle keepdim", {In({3, 5, 7})}, [](const X& x) { return sum(x[0], {1}, true); }},
      {"sum 0,2", {In({3, 5, 7, 2})}, [](const X& x) { return sum(x[0], {0, 2}); }},
      {"sum 1,3 keepdim", {In({3, 5, 7, 2})}, [](const X& x) { return sum(x[0], {1, 3}, true); }},
      {"sum size-1 dims", {In({1, 5, 1, 7})}, [](const X& x) { return sum(x[0], {0, 2}); }},
      {"sum 0-d", {In({})}, [](const X& x) { return sum(x[0]); }},
      {"mean all", {In({37, 65})}, [](const X& x) { return mean(x[0]); }},
      {"mean last keepdim", {In({8, 9, 300})}, [](const X& x) { return mean(x[0], {-1}, true); }},
      {"mean 0,1", {In({8, 9, 30})}, [](const X& x) { return mean(x[0], {0, 1}); }},
      {"var last", {In({8, 9, 30})}, [](const X& x) { return var(x[0], {-1}); }},
      {"var biased keepdim", {In({8, 9, 30})}, [](const X& x) { return var(x[0], {0, 2}, false, true); }},
      {"var all", {In({33, 17})}, [](const X& x) { return var(x[0], {}); }},
  });
}

TEST_CASE("max and amax match the cpu, indices included") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"max last", {In({9, 33}, Domain::Distinct)}, [](const X& x) { return max(x[0], -1).values; }},
      {"max first", {In({9, 33}, Domain::Distinct)}, [](const X& x) { return max(x[0], 0).values; }},
      {"max middle keepdim", {In({4, 300, 5}, Domain::Distinct)}, [](const X& x) { return max(x[0], 1, true).values; }},
      {"max long rows", {In({3, 5000}, Domain::Distinct)}, [](const X& x) { return max(x[0], 1).values; }},
      {"amax", {In({37, 65}, Domain::Distinct)}, [](const X& x) { return amax(x[0]); }},
  });
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
