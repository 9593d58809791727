// The engine itself: accumulation, freed graphs, grad mode, detach, RNG.
#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;

TEST_CASE("leaf gradients add up across backward calls") {
  Tensor x = from_vector({0.3, -1.2, 2.0}, {3}, DType::F64).requires_grad_();
  Tensor u = from_vector({1.5, -0.5, 0.25}, {3}, DType::F64);
  gelu(x).backward(u);
  auto g1 = x.grad().to_vector();
  gelu(x).backward(u);
  auto g2 = x.grad().to_vector();
  for (int i = 0; i < 3; ++i) CHECK(g2[i] == 2 * g1[i]);
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a chain through reshape and dtype conversion reaches the leaf") {
  Tensor x = from_vector({0.3, -1.2, 2.0, 0.7, -0.1, 1.1}, {2, 3}, DType::F32).requires_grad_();
  Tensor y = gelu(x.reshape({3, 2}).to(DType::F64));
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.dtype() == DType::F64);
  y.backward(ones({3, 2}, DType::F64));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == DType::F32);
  CHECK(x.grad().shape() == Shape{2, 3});
  // d gelu / dx at 0 is 0.5
  auto g = x.grad().to_vector();
  double x0 = 0.3, cdf = 0.5 * (1 + std::erf(x0 / std::sqrt(2.0)));
  double pdf = std::exp(-0.5 * x0 * x0) / std::sqrt(2 * M_PI);
  CHECK(g[0] == doctest::Approx(cdf + x0 * pdf).epsilon(1e-6));
}

TEST_CASE("backward through a freed graph is refused with a clear message") {
  Tensor x = from_vector({0.5}, {1}, DType::F64).requires_grad_();
  Tensor y = gelu(gelu(x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("retain_graph"), pw::Error);
  Tensor z = gelu(gelu(x));
  z.backward(Tensor(), /*retain_graph=*/true);
  CHECK_NOTHROW(z.backward());
}

TEST_CASE("backward on a non-scalar needs an upstream gradient") {
  Tensor x = from_vector({0.5, 1.0}, {2}, DType::F64).requires_grad_();
  Tensor y = gelu(x);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("non-scalar"), pw::Error);
  CHECK_THROWS_WITH_AS(y.backward(ones({3}, DType::F64)), doctest::Contains("does not match"), pw::Error);
  CHECK_THROWS_WITH_AS(y.backward(ones({2}, DType::F32)), doctest::Contains("dtype mismatch"), pw::Error);
}

TEST_CASE("NoGrad records nothing; detach cuts history but shares storage") {
  Tensor x = from_vector({0.5, 1.0}, {2}, DType::F64).requires_grad_();
  {
    NoGrad ng;
    Tensor y = gelu(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  Tensor y = gelu(x);
  CHECK(y.requires_grad());
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.raw() == y.raw());
  CHECK_THROWS_WITH_AS(d.backward(), doctest::Contains("does not require grad"), pw::Error);
}

TEST_CASE("requires_grad propagates only from inputs that require it") {
  Tensor a = from_vector({0.5, 1.0}, {2}, DType::F64);
  CHECK_FALSE(gelu(a).requires_grad());
  CHECK_THROWS_WITH_AS(from_indices({1, 2}, {2}).requires_grad_(), doctest::Contains("floating-point"), pw::Error);
}

TEST_CASE("backward on a leaf adds the seed to its gradient") {
  Tensor x = from_vector({2.0}, {1}, DType::F64).requires_grad_();
  x.backward();
  x.backward();
  CHECK(x.grad().item() == 2.0);
}

TEST_CASE("a deep chain does not overflow the stack") {
  Tensor x = from_vector({0.1}, {1}, DType::F64).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y.reshape({1});
  y.backward();
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("random numbers depend on (seed, offset) only, not on the thread count") {
  omp_set_num_threads(1);
  Generator g1(42);
  Tensor a = uniform({100000}, -1, 1, DType::F32, &g1);
  omp_set_num_threads(2);
  Generator g2(42);
  Tensor b = uniform({100000}, -1, 1, DType::F32, &g2);
  CHECK(std::memcmp(a.raw(), b.raw(), 100000 * sizeof(float)) == 0);
  CHECK(g1.offset == 100000);
  Tensor c = uniform({100000}, -1, 1, DType::F32, &g2);  // next draw differs
  CHECK(std::memcmp(a.raw(), c.raw(), 100000 * sizeof(float)) != 0);
  auto v = a.to_vector();
  double lo = 1e9, hi = -1e9, mean = 0;
  for (double e : v) { lo = std::min(lo, e); hi = std::max(hi, e); mean += e; }
  CHECK(lo >= -1.0);
  CHECK(hi < 1.0);
  CHECK(std::abs(mean / v.size()) < 0.01);
}

TEST_CASE("normal and truncated normal have the requested moments and range") {
  Generator g(7);
  auto v = normal({200000}, 1.0, 2.0, DType::F64, &g).to_vector();
  double m = 0, s = 0;
  for (double e : v) m += e;
  m /= v.size();
  for (double e : v) s += (e - m) * (e - m);
  s = std::sqrt(s / v.size());
  CHECK(m == doctest::Approx(1.0).epsilon(0.02));
  CHECK(s == doctest::Approx(2.0).epsilon(0.02));
  auto t = trunc_normal({100000}, 0.0, 0.02, -0.04, 0.04, DType::F64, &g).to_vector();
  double tm = 0, tmax = 0;
  for (double e : t) { tm += e; tmax = std::max(tmax, std::abs(e)); }
  CHECK(tmax <= 0.04);
  CHECK(std::abs(tm / t.size()) < 5e-4);
}

TEST_CASE("creation helpers and shape errors") {
  CHECK(arange(0, 5).to_vector() == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(full({2, 2}, 3.5).to_vector() == std::vector<double>{3.5, 3.5, 3.5, 3.5});
  CHECK(zeros({3}, DType::I64).to_vector() == std::vector<double>{0, 0, 0});
  CHECK(reinterpret_cast<uintptr_t>(empty({7}).raw()) % 64 == 0);
  Tensor x = arange(0, 12);
  CHECK(x.reshape({3, -1}).shape() == Shape{3, 4});
  CHECK_THROWS_WITH_AS(x.reshape({5, -1}), doctest::Contains("reshape"), pw::Error);
  CHECK_THROWS_WITH_AS(x.data<double>(), doctest::Contains("f32[12]"), pw::Error);
  CHECK_THROWS_WITH_AS(x.size(3), doctest::Contains("out of range"), pw::Error);
}
