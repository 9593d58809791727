// Pooling (kernels/pool) and resizing (kernels/interp): thread-count
// independence, NaN propagation, bad input. Gradients, float32 vs float64 and
// the PyTorch values are test rows (tests/ops/pool.cpp, tests/ops/interp.cpp).
#include <omp.h>

#include <cmath>
#include <limits>

#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("gradients do not depend on the thread count") {
  // Shapes big enough to cross kParallelGrain, so the plane loops really fork.
  Tensor x0 = normal({4, 16, 33, 35}, 0, 1, DType::F32);
  std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops = {
      {"avg_pool2d", [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, true, false); }},
      {"max_pool2d", [](const Tensor& x) { return max_pool2d(x, {3, 3}, {1, 1}, {1, 1}); }},
      {"global_avg_pool2d", [](const Tensor& x) { return global_avg_pool2d(x); }},
      {"bilinear", [](const Tensor& x) { return interpolate_bilinear(x, 47, 29); }},
      {"bicubic", [](const Tensor& x) { return interpolate_bicubic(x, 20, 61, true); }},
  };
  int saved = omp_get_max_threads();
  for (auto& [name, f] : ops) {
    const std::string op = name;  // clang < 16 can't capture bindings
    CAPTURE(op);
    std::vector<double> y[2], g[2];
    Tensor u;
    for (int run = 0; run < 2; ++run) {
      omp_set_num_threads(run == 0 ? 1 : 4);
      Tensor x = x0.clone().requires_grad_();
      Tensor out = f(x);
      if (run == 0) u = normal(out.shape(), 0, 1, DType::F32);
      out.backward(u);
      y[run] = out.to_vector();
      g[run] = x.grad().to_vector();
    }
    CHECK(y[0] == y[1]);
    CHECK(g[0] == g[1]);
  }
  omp_set_num_threads(saved);
}

TEST_CASE("max_pool2d propagates NaN like torch") {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = from_vector({1, nan, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, DType::F64);
  auto y = max_pool2d(x, {2, 2}, {1, 1}).to_vector();
  CHECK(std::isnan(y[0]));
  CHECK(std::isnan(y[1]));
  CHECK(y[2] == 8);
  CHECK(y[3] == 9);
}

TEST_CASE("pool and interp reject bad input") {
  Tensor x = normal({1, 2, 3, 3}, 0, 1);
  Tensor x3 = normal({2, 3, 4}, 0, 1);
  Tensor xi = from_indices({1, 2, 3, 4}, {1, 1, 2, 2});
  auto err = [](const char* op) { return doctest::Contains(op); };
  // kernel larger than the padded input
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {5, 5}, {1, 1}), err("avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {3, 6}, {1, 1}, {1, 1}), err("larger than the padded input"), pw::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {4, 4}, {2, 2}), err("max_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool1d(x3, 7, 1, 1), err("avg_pool1d"), pw::Error);
  // padding over half the kernel, non-positive kernel or stride
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {2, 2}, {1, 1}, {2, 0}), err("padding"), pw::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {2, 2}, {0, 1}), err("max_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool1d(x3, 0, 1), err("avg_pool1d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {2, 2}, {1, 1}, {-1, 0}), err("avg_pool2d"), pw::Error);
  // wrong rank
  CHECK_THROWS_WITH_AS(avg_pool2d(x3, {2, 2}, {1, 1}), err("avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool1d(x, 2, 1), err("avg_pool1d"), pw::Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(x3), err("global_avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(normal({3, 3}, 0, 1), {2, 2}, {1, 1}), err("max_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bilinear(x3, 4, 4), err("interpolate_bilinear"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bicubic(normal({1, 1, 1, 2, 2}, 0, 1), 4, 4), err("interpolate_bicubic"), pw::Error);
  // non-positive output size, empty planes
  CHECK_THROWS_WITH_AS(interpolate_bilinear(x, 0, 4), err("interpolate_bilinear"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bicubic(x, 4, -2), err("interpolate_bicubic"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bilinear(zeros({1, 1, 0, 3}), 2, 2), err("interpolate_bilinear"), pw::Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(zeros({1, 1, 0, 3})), err("global_avg_pool2d"), pw::Error);
  // integer tensors
  CHECK_THROWS_WITH_AS(avg_pool2d(xi, {2, 2}, {1, 1}), err("avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(xi, {2, 2}, {1, 1}), err("max_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(xi), err("global_avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(interpolate_bilinear(xi, 3, 3), err("interpolate_bilinear"), pw::Error);
}
