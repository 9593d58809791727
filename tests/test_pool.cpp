// Pooling (kernels/pool) and resizing (kernels/interp): gradients, PyTorch
// reference values, float32 vs float64, thread-count independence, bad input.
#include <omp.h>

#include <cmath>
#include <limits>

#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/reference.h"

using namespace pw;
using namespace pw::test;

namespace {

using A2 = std::array<int64_t, 2>;

// One op per fixture case of scripts/reference/pool.py (same names, same parameters).
std::vector<std::pair<std::string, OpFn>> reference_ops() {
  std::vector<std::pair<std::string, OpFn>> ops = {
      {"avg2d_k3s2p1", [](auto& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"avg2d_k3x2_s1x2_p1x0", [](auto& x) { return avg_pool2d(x[0], {3, 2}, {1, 2}, {1, 0}); }},
      {"avg2d_ceil", [](auto& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true); }},
      {"avg2d_ceil_nopadcount", [](auto& x) { return avg_pool2d(x[0], {3, 2}, {2, 2}, {1, 1}, true, false); }},
      {"avg2d_nopadcount", [](auto& x) { return avg_pool2d(x[0], {3, 3}, {2, 3}, {1, 1}, false, false); }},
      {"avg2d_k2s2", [](auto& x) { return avg_pool2d(x[0], {2, 2}, {2, 2}); }},
      {"avg1d_k3s2p1", [](auto& x) { return avg_pool1d(x[0], 3, 2, 1); }},
      {"avg1d_ceil_nopadcount", [](auto& x) { return avg_pool1d(x[0], 4, 3, 2, true, false); }},
      {"global_avg", [](auto& x) { return global_avg_pool2d(x[0]); }},
      {"max2d_k3s2p1", [](auto& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"max2d_k2s2_ceil", [](auto& x) { return max_pool2d(x[0], {2, 2}, {2, 2}, {0, 0}, true); }},
      {"max2d_k3x2_s1_p1x0", [](auto& x) { return max_pool2d(x[0], {3, 2}, {1, 1}, {1, 0}); }},
  };
  struct R { const char* name; A2 size; };
  const R resizes[] = {{"up", {7, 9}}, {"down", {4, 5}}, {"mixed", {9, 3}},
                       {"same", {4, 5}}, {"to1x1", {1, 1}}, {"posembed", {8, 8}}};
  for (bool cubic : {false, true})
    for (const R& r : resizes)
      for (bool ac : {false, true}) {
        std::string name = std::string(cubic ? "bicubic_" : "bilinear_") + r.name + "_ac" + (ac ? "1" : "0");
        A2 s = r.size;
        ops.push_back({name, [=](auto& x) {
                         return cubic ? interpolate_bicubic(x[0], s[0], s[1], ac)
                                      : interpolate_bilinear(x[0], s[0], s[1], ac);
                       }});
      }
  return ops;
}

}  // namespace

TEST_CASE("pool gradients") {
  run_op_cases({
      {"avg_pool2d k3 s2 p1", {In({2, 3, 7, 9})}, [](auto& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"avg_pool2d k3x2 s1x2 p1x0", {In({2, 1, 5, 7})}, [](auto& x) { return avg_pool2d(x[0], {3, 2}, {1, 2}, {1, 0}); }},
      {"avg_pool2d ceil", {In({1, 2, 6, 8})}, [](auto& x) { return avg_pool2d(x[0], {3, 2}, {2, 2}, {1, 1}, true); }},
      {"avg_pool2d ceil no-pad-count", {In({1, 2, 6, 7})},
       [](auto& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true, false); }},
      {"avg_pool1d k3 s2 p1", {In({2, 3, 11})}, [](auto& x) { return avg_pool1d(x[0], 3, 2, 1); }},
      {"avg_pool1d ceil no-pad-count", {In({2, 3, 10})}, [](auto& x) { return avg_pool1d(x[0], 4, 3, 2, true, false); }},
      {"global_avg_pool2d", {In({2, 3, 5, 7})}, [](auto& x) { return global_avg_pool2d(x[0]); }},
      {"max_pool2d k3 s2 p1", {In({2, 3, 7, 9}, Domain::Distinct)},
       [](auto& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"max_pool2d k2 s2 ceil", {In({1, 2, 5, 7}, Domain::Distinct)},
       [](auto& x) { return max_pool2d(x[0], {2, 2}, {2, 2}, {0, 0}, true); }},
      {"max_pool2d k3x2 s1 p1x0 (shared winners)", {In({1, 2, 5, 6}, Domain::Distinct)},
       [](auto& x) { return max_pool2d(x[0], {3, 2}, {1, 1}, {1, 0}); }},
  });
}

TEST_CASE("interp gradients") {
  run_op_cases({
      {"bilinear up", {In({2, 3, 4, 5})}, [](auto& x) { return interpolate_bilinear(x[0], 7, 9); }},
      {"bilinear up align_corners", {In({2, 3, 4, 5})}, [](auto& x) { return interpolate_bilinear(x[0], 7, 9, true); }},
      {"bilinear down", {In({1, 2, 9, 11})}, [](auto& x) { return interpolate_bilinear(x[0], 4, 5); }},
      {"bilinear down align_corners", {In({1, 2, 9, 11})}, [](auto& x) { return interpolate_bilinear(x[0], 4, 5, true); }},
      {"bilinear mixed", {In({1, 3, 5, 8})}, [](auto& x) { return interpolate_bilinear(x[0], 9, 3); }},
      {"bilinear to 1x1 align_corners", {In({1, 2, 3, 5})}, [](auto& x) { return interpolate_bilinear(x[0], 1, 1, true); }},
      {"bicubic up", {In({2, 3, 4, 5})}, [](auto& x) { return interpolate_bicubic(x[0], 7, 9); }},
      {"bicubic up align_corners", {In({2, 3, 4, 5})}, [](auto& x) { return interpolate_bicubic(x[0], 7, 9, true); }},
      {"bicubic down", {In({1, 2, 9, 11})}, [](auto& x) { return interpolate_bicubic(x[0], 4, 5); }},
      {"bicubic down align_corners", {In({1, 2, 9, 11})}, [](auto& x) { return interpolate_bicubic(x[0], 4, 5, true); }},
      {"bicubic mixed", {In({1, 3, 5, 8})}, [](auto& x) { return interpolate_bicubic(x[0], 9, 3); }},
      {"bicubic to 1x1", {In({1, 2, 3, 5})}, [](auto& x) { return interpolate_bicubic(x[0], 1, 1); }},
  });
}

TEST_CASE("pool and interp match PyTorch") {
  auto cases = load_reference("pool");
  auto ops = reference_ops();
  REQUIRE(cases.size() == ops.size());
  for (auto& [name, fn] : ops) {
    CAPTURE(name);
    REQUIRE(cases.count(name) == 1);
    check_reference(cases.at(name), fn);
  }
}

TEST_CASE("float32 agrees with float64") {
  // The same fixture inputs through the f32 instantiations, forward and backward.
  auto cases = load_reference("pool");
  for (auto& [name, fn] : reference_ops()) {
    CAPTURE(name);
    const RefCase& rc = cases.at(name);
    Tensor x = rc.inputs[0].tensor().to(DType::F32).detach().requires_grad_();
    Tensor y = fn({x});
    REQUIRE(y.dtype() == DType::F32);
    check_close(y.to_vector(), rc.output.data, 1e-5, 1e-4, "forward f32");
    y.backward(rc.upstream.tensor().to(DType::F32));
    check_close(x.grad().to_vector(), rc.grads[0].data, 1e-5, 1e-4, "grad f32");
  }
}

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
    CAPTURE(name);
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
