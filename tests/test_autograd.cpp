// The engine itself: accumulation, freed graphs, grad mode, detach, RNG.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <map>

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

// The gradient-ready hook (autograd/function.h; the data-parallel reducer's overlap):
// once per leaf, right after its last use in the backward, with the final .grad.
TEST_CASE("gradient-ready hook: once per leaf, after its last accumulation, values unchanged") {
  auto leaf = [](std::vector<double> v) { return from_vector(v, {3}, DType::F64).requires_grad_(); };
  Tensor a = leaf({0.3, -1.2, 2.0}), b = leaf({1.5, -0.5, 0.25}), c = leaf({-0.7, 0.9, 1.1}),
         d = leaf({1, 2, 3}), unused = leaf({4, 5, 6});
  // a is used early in the forward (mul) and again last (add), so its first gradient
  // arrives at the start of the backward and its last at the end; d is used twice by
  // one node; `unused` is in no graph.
  auto forward = [&] { return sum(add(add(mul(mul(a, b), c), a), mul(d, d))); };
  d.set_grad(from_vector({10, 20, 30}, {3}, DType::F64));  // an earlier gradient: the hook sees the sum

  // Without the hook: the reference gradients.
  forward().backward();
  std::vector<std::vector<double>> want;
  for (Tensor* t : {&a, &b, &c, &d}) want.push_back(t->grad().to_vector());
  for (Tensor* t : {&a, &b, &c}) t->zero_grad();
  d.set_grad(from_vector({10, 20, 30}, {3}, DType::F64));

  std::vector<std::pair<const void*, std::vector<double>>> calls;
  GradReadyHook prev = set_grad_ready_hook([&](const Tensor& t) {
    calls.push_back({t.impl_ptr().get(), t.grad().to_vector()});
  });
  CHECK_FALSE(prev);
  forward().backward();
  set_grad_ready_hook(nullptr);

  REQUIRE(calls.size() == 4);  // a, b, c, d once each; `unused` never
  std::map<const void*, size_t> pos;
  for (size_t i = 0; i < calls.size(); ++i) CHECK(pos.emplace(calls[i].first, i).second);
  CHECK_FALSE(pos.count(unused.impl_ptr().get()));
  // The grad the hook saw is the final one, and equals the run without the hook bit for bit.
  const Tensor* leaves[] = {&a, &b, &c, &d};
  for (size_t i = 0; i < 4; ++i) {
    REQUIRE(pos.count(leaves[i]->impl_ptr().get()));
    CHECK(calls[pos[leaves[i]->impl_ptr().get()]].second == want[i]);
    CHECK(leaves[i]->grad().to_vector() == want[i]);
  }
  // c's last use (mul(.., c)) runs before a's and b's (mul(a, b)): c is final first.
  CHECK(pos[c.impl_ptr().get()] < pos[a.impl_ptr().get()]);
  CHECK(pos[c.impl_ptr().get()] < pos[b.impl_ptr().get()]);
  // a's gradient b*c + 1 includes both uses.
  auto av = a.grad().to_vector();
  CHECK(av[0] == doctest::Approx(1.5 * -0.7 + 1));
  // d: 10 + 2 d.
  CHECK(d.grad().to_vector() == std::vector<double>{12, 24, 36});

  // A backward on a leaf itself also reports it.
  calls.clear();
  set_grad_ready_hook([&](const Tensor& t) { calls.push_back({t.impl_ptr().get(), t.grad().to_vector()}); });
  unused.backward(ones({3}, DType::F64));
  set_grad_ready_hook(nullptr);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].first == unused.impl_ptr().get());
}
