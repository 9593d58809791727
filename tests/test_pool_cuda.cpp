// CPU/CUDA parity of the pooling family (avg_pool2d, avg_pool1d, global_avg_pool2d,
// max_pool2d): forward, the input gradient, and exact accumulation of a second
// backward. Odd sizes, padding, strides, ceil mode, count_include_pad both ways,
// overlapping windows (shared max winners) and ties.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

// Values with many exact ties (small integers), so the max-pool argmax tie rule
// (first in row-major window order) must agree between the backends.
static In tied(Shape s) {
  int64_t n = 1;
  for (int64_t e : s) n *= e;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = double((i * 7 + i / 5) % 4);
  In in = In::fixed(std::move(s), std::move(v));
  in.grad = true;
  return in;
}

TEST_CASE("pooling matches the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"avg_pool2d k3 s2 p1", {In({2, 3, 7, 9})}, [](const X& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"avg_pool2d k3x2 s1x2 p1x0", {In({2, 1, 5, 7})}, [](const X& x) { return avg_pool2d(x[0], {3, 2}, {1, 2}, {1, 0}); }},
      {"avg_pool2d k2 s2", {In({3, 5, 8, 6})}, [](const X& x) { return avg_pool2d(x[0], {2, 2}, {2, 2}); }},
      {"avg_pool2d ceil", {In({1, 2, 6, 8})}, [](const X& x) { return avg_pool2d(x[0], {3, 2}, {2, 2}, {1, 1}, true); }},
      {"avg_pool2d ceil no-pad-count", {In({1, 2, 6, 7})},
       [](const X& x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true, false); }},
      {"avg_pool2d no-pad-count s2x3", {In({2, 3, 9, 11})},
       [](const X& x) { return avg_pool2d(x[0], {3, 3}, {2, 3}, {1, 1}, false, false); }},
      {"avg_pool2d large k5 s1 p2", {In({4, 16, 33, 31})},
       [](const X& x) { return avg_pool2d(x[0], {5, 5}, {1, 1}, {2, 2}); }},
      {"avg_pool1d k3 s2 p1", {In({2, 3, 11})}, [](const X& x) { return avg_pool1d(x[0], 3, 2, 1); }},
      {"avg_pool1d ceil no-pad-count", {In({2, 3, 10})},
       [](const X& x) { return avg_pool1d(x[0], 4, 3, 2, true, false); }},
      {"global_avg_pool2d", {In({2, 3, 5, 7})}, [](const X& x) { return global_avg_pool2d(x[0]); }},
      // Planes larger than the block (strided block loop); float sums 3000 values
      // in a different order than the CPU (CUDA accumulates in double).
      {"global_avg_pool2d large", {In({3, 4, 50, 61})}, [](const X& x) { return global_avg_pool2d(x[0]); }},
      {"max_pool2d k3 s2 p1", {In({2, 3, 7, 9})}, [](const X& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"max_pool2d k2 s2 ceil", {In({1, 2, 5, 7})},
       [](const X& x) { return max_pool2d(x[0], {2, 2}, {2, 2}, {0, 0}, true); }},
      {"max_pool2d k3x2 s1 p1x0 (shared winners)", {In({1, 2, 5, 6})},
       [](const X& x) { return max_pool2d(x[0], {3, 2}, {1, 1}, {1, 0}); }},
      {"max_pool2d k3 s1 p1 ties", {tied({2, 3, 7, 9})},
       [](const X& x) { return max_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}); }},
      {"max_pool2d k3 s2 ceil ties", {tied({1, 2, 8, 7})},
       [](const X& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true); }},
      {"max_pool2d large k3 s2 p1", {In({4, 16, 33, 31})},
       [](const X& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
  });
}

TEST_CASE("max_pool2d on cuda propagates NaN as the cpu does") {
  PW_SKIP_WITHOUT_CUDA();
  std::vector<double> v(2 * 5 * 5);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i % 6) - 2.5;
  v[7] = std::nan("");
  Tensor x = from_vector(v, {1, 2, 5, 5}, DType::F32);
  Tensor yc = max_pool2d(x, {2, 2}, {1, 1});
  Tensor yg = max_pool2d(x.to(Device::CUDA), {2, 2}, {1, 1});
  std::vector<double> a = yc.to_vector(), b = yg.to_vector();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    if (std::isnan(a[i])) CHECK(std::isnan(b[i]));
    else CHECK(a[i] == b[i]);
  }
}

TEST_CASE("pooling on cuda keeps the cpu's input checks") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({2, 3, 5, 5}, 0, 1).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {3, 3}, {1, 1}, {2, 2}), doctest::Contains("avg_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {7, 7}, {1, 1}), doctest::Contains("max_pool2d"), pw::Error);
  CHECK_THROWS_WITH_AS(avg_pool1d(x, 3, 1), doctest::Contains("avg_pool1d"), pw::Error);
}
