// dropout and drop_path (kernels/dropout).
#include <omp.h>

#include <cmath>

#include "kernels/ops.h"
#include "kernels/dropout/dropout_math.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

using X = std::vector<Tensor>;

// The gradient checks and CPU/CUDA parity of dropout and drop_path are test rows
// (tests/ops/dropout.cpp); here: eval mode, the masks' properties, bad inputs.
TEST_CASE("dropout in eval mode passes the gradient through") {
  run_op_cases({
      {"dropout_eval", {In({5, 7})}, [](const X& x) { return sum(dropout(x[0], 0.5, false), {1}); }},
  });
}

TEST_CASE("the inline Philox matches pw::philox_uniform") {
  for (uint64_t seed : {0ull, 1ull, 0x123456789abcdefull})
    for (uint64_t ctr : {0ull, 1ull, 77ull, (1ull << 32) - 1, (1ull << 32) + 5, 0xfedcba9876543210ull}) {
      float u[4];
      math::philox_uniform4(seed, ctr, u);
      CHECK(u[0] == philox_uniform(seed, ctr));
      for (float w : u) CHECK((w >= 0.0f && w < 1.0f));
    }
  // The four words of one counter are distinct draws, not copies.
  float u[4];
  math::philox_uniform4(3, 9, u);
  CHECK((u[0] != u[1] && u[1] != u[2] && u[2] != u[3]));
}

TEST_CASE("dropout keeps 1-p of the elements, scaled by 1/(1-p)") {
  const double p = 0.3;
  const int64_t n = 1 << 20;
  Tensor x = uniform({n}, 1.0, 2.0, DType::F32);
  Generator g(2024);
  Tensor y = dropout(x, p, true, &g);
  auto xv = x.to_vector(), yv = y.to_vector();
  int64_t kept = 0;
  bool scaled = true;
  for (int64_t i = 0; i < n; ++i) {
    if (yv[i] != 0) {
      ++kept;
      scaled = scaled && std::abs(yv[i] - xv[i] / (1 - p)) <= 1e-6 * std::abs(yv[i]);
    }
  }
  CHECK(scaled);
  double rate = (double)kept / n, sigma = std::sqrt(p * (1 - p) / n);
  CHECK(std::abs(rate - (1 - p)) < 5 * sigma);
  CHECK(g.offset == (uint64_t)n / 4);  // one Philox counter per 4 elements
  // The expectation is preserved: mean(y) ~ mean(x).
  CHECK(mean(y).item() == doctest::Approx(mean(x).item()).epsilon(0.01));
}

TEST_CASE("dropout masks: same seed same mask, new draw new mask, independent of threads") {
  Tensor x = normal({300, 301}, 0, 1, DType::F32);
  auto draw = [&](uint64_t seed) {
    Generator g(seed);
    return dropout(x, 0.5, true, &g).to_vector();
  };
  CHECK(draw(5) == draw(5));
  CHECK(draw(5) != draw(6));
  // Odd sizes (a last Philox counter serving fewer than 4 elements) advance by ceil(n/4).
  Generator go(1);
  dropout(normal({7}, 0, 1, DType::F64), 0.5, true, &go);
  CHECK(go.offset == 2);
  Generator g(5);
  auto first = dropout(x, 0.5, true, &g).to_vector();
  auto second = dropout(x, 0.5, true, &g).to_vector();
  CHECK(first != second);  // the offset moved on
  // Default generator follows manual_seed.
  manual_seed(77);
  auto d1 = dropout(x, 0.5, true).to_vector();
  manual_seed(77);
  CHECK(dropout(x, 0.5, true).to_vector() == d1);
  // Thread count: the mask is a pure function of (seed, counter).
  int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  auto a = draw(9);
  Generator ga(9);
  auto pa = drop_path(x, 0.5, true, &ga).to_vector();
  omp_set_num_threads(2);
  auto b = draw(9);
  Generator gb(9);
  auto pb = drop_path(x, 0.5, true, &gb).to_vector();
  omp_set_num_threads(prev);
  CHECK(a == b);
  CHECK(pa == pb);
}

TEST_CASE("dropout backward re-derives the forward mask") {
  Tensor x = uniform({200, 300}, 0.5, 1.5, DType::F64).requires_grad_();
  Generator g(3);
  Tensor y = dropout(x, 0.25, true, &g);
  Tensor u = normal({200, 300}, 0, 1, DType::F64);
  y.backward(u);
  auto xv = x.to_vector(), yv = y.to_vector(), uv = u.to_vector(), gv = x.grad().to_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    double mask_scale = yv[i] / xv[i];  // 0 or 1/(1-p)
    REQUIRE(gv[i] == doctest::Approx(uv[i] * mask_scale).epsilon(1e-12));
  }
}

TEST_CASE("drop_path drops whole samples") {
  const double p = 0.4;
  const int64_t B = 20000, M = 6;
  Tensor x = uniform({B, 2, 3}, 1.0, 2.0, DType::F64);
  Generator g(8);
  Tensor y = drop_path(x, p, true, &g);
  CHECK(g.offset == (uint64_t)B);
  auto xv = x.to_vector(), yv = y.to_vector();
  int64_t kept = 0;
  bool whole = true;
  for (int64_t b = 0; b < B; ++b) {
    bool k = yv[b * M] != 0;
    kept += k;
    for (int64_t i = 0; i < M; ++i)
      whole = whole && (k ? std::abs(yv[b * M + i] - xv[b * M + i] / (1 - p)) < 1e-12 : yv[b * M + i] == 0);
  }
  CHECK(whole);
  CHECK(std::abs((double)kept / B - (1 - p)) < 5 * std::sqrt(p * (1 - p) / B));
}

TEST_CASE("dropout identity and extreme p") {
  Tensor x = normal({4, 5}, 0, 1, DType::F64).requires_grad_();
  CHECK(dropout(x, 0.5, false).same(x));
  CHECK(dropout(x, 0.0, true).same(x));
  CHECK(drop_path(x, 0.5, false).same(x));
  CHECK(drop_path(x, 0.0, true).same(x));
  Generator g(1);
  Tensor y = dropout(x, 1.0, true, &g);
  for (double v : y.to_vector()) CHECK(v == 0.0);
  sum(y).backward();
  for (double v : x.grad().to_vector()) CHECK(v == 0.0);
  Generator g2(1);
  for (double v : drop_path(x, 1.0, true, &g2).to_vector()) CHECK(v == 0.0);
}

TEST_CASE("dropout bad inputs") {
  Tensor x = normal({4, 5}, 0, 1, DType::F64);
  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true), doctest::Contains("dropout: drop probability p must be in [0, 1], got 1.5"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1, false), doctest::Contains("dropout"), pw::Error);
  CHECK_THROWS_WITH_AS(drop_path(x, 2.0, true), doctest::Contains("drop_path: drop probability"), pw::Error);
  CHECK_THROWS_WITH_AS(drop_path(full({}, 1.0, DType::F64), 0.5, true), doctest::Contains("drop_path: expected an input with a batch dim"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(dropout(from_indices({1, 2}, {2}), 0.5, true), doctest::Contains("dropout"), pw::Error);
  CHECK_THROWS_WITH_AS(drop_path(from_indices({1, 2}, {2}), 0.5, true), doctest::Contains("drop_path"), pw::Error);
}
