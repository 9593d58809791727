// Activation properties (the per-op gradient checks, PyTorch references and
// CPU/CUDA parity are test rows: tests/ops/activation.cpp).
#include <cmath>

#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;


TEST_CASE("gelu forward values") {
  // gelu(x) = x * Phi(x); Phi(1) = 0.8413447460685429, Phi(-0.5) = 0.3085375387259869.
  Tensor x = from_vector({1.0, -0.5, 0.0}, {3}, DType::F64);
  auto y = gelu(x).to_vector();
  CHECK(y[0] == doctest::Approx(0.8413447460685429).epsilon(1e-14));
  CHECK(y[1] == doctest::Approx(-0.5 * 0.3085375387259869).epsilon(1e-14));
  CHECK(y[2] == 0.0);
}

TEST_CASE("activations at their kinks and extremes") {
  Tensor x = from_vector({-1000.0, -3.0, 0.0, 3.0, 1000.0}, {5}, DType::F64).requires_grad_();
  Tensor ones5 = from_vector({1, 1, 1, 1, 1}, {5}, DType::F64);
  // PyTorch's conventions at the kinks: relu'(0) = 0; hardswish'(-3) = -1/2, hardswish'(3) = 3/2.
  relu(x).backward(ones5);
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 1, 1});
  x.zero_grad();
  Tensor h = hardswish(x);
  CHECK(h.to_vector() == std::vector<double>{0, 0, 0, 3, 1000});
  h.backward(ones5);
  CHECK(x.grad().to_vector() == std::vector<double>{0, -0.5, 0.5, 1.5, 1});
  // Saturation gives exact limits, never nan, in float and double.
  for (DType t : {DType::F32, DType::F64}) {
    Tensor z = from_vector({-1000.0, 1000.0}, {2}, t);
    CHECK(sigmoid(z).to_vector() == std::vector<double>{0, 1});
    CHECK(tanh(z).to_vector() == std::vector<double>{-1, 1});
    CHECK(silu(z).to_vector() == std::vector<double>{-0.0, 1000});
    CHECK(gelu(z).to_vector() == std::vector<double>{-0.0, 1000});
    CHECK(gelu_tanh(z).to_vector() == std::vector<double>{-0.0, 1000});
  }
}

TEST_CASE("activation float32 agrees with float64") {
  Tensor x = normal({8, 33}, 0, 2, DType::F64);
  Tensor x32 = x.to(DType::F32);
  for (auto f : std::vector<Tensor (*)(const Tensor&)>{relu, gelu, gelu_tanh, silu, sigmoid, tanh, hardswish}) {
    check_close(f(x32).to_vector(), f(x).to_vector(), 1e-6, 1e-5, "f32 forward");
  }
  check_close(glu(x32, 0).to_vector(), glu(x, 0).to_vector(), 1e-6, 1e-5, "glu f32");
}

TEST_CASE("activation bad inputs") {
  Tensor x = normal({3, 5}, 0, 1, DType::F64);
  CHECK_THROWS_WITH_AS(glu(x), doctest::Contains("glu"), pw::Error);        // 5 is odd
  CHECK_THROWS_WITH_AS(glu(x), doctest::Contains("odd size 5"), pw::Error);
  CHECK_THROWS_WITH_AS(glu(x, 2), doctest::Contains("out of range"), pw::Error);
  CHECK_THROWS_WITH_AS(glu(x, -3), doctest::Contains("glu"), pw::Error);
  Tensor i = from_indices({1, 2}, {2});
  CHECK_THROWS_WITH_AS(relu(i), doctest::Contains("relu"), pw::Error);
  CHECK_THROWS_WITH_AS(gelu(i), doctest::Contains("gelu"), pw::Error);
  CHECK_THROWS_WITH_AS(sigmoid(i), doctest::Contains("sigmoid"), pw::Error);
  CHECK_THROWS_WITH_AS(glu(i), doctest::Contains("glu"), pw::Error);
}
