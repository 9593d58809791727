#include "autograd/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("activation gradients") {
  run_op_cases({
      {"gelu", {In({3, 5})}, [](auto& x) { return gelu(x[0]); }},
  });
}

TEST_CASE("gelu forward values") {
  // gelu(x) = x * Phi(x); Phi(1) = 0.8413447460685429, Phi(-0.5) = 0.3085375387259869.
  Tensor x = from_vector({1.0, -0.5, 0.0}, {3}, DType::F64);
  auto y = gelu(x).to_vector();
  CHECK(y[0] == doctest::Approx(0.8413447460685429).epsilon(1e-14));
  CHECK(y[1] == doctest::Approx(-0.5 * 0.3085375387259869).epsilon(1e-14));
  CHECK(y[2] == 0.0);
}
