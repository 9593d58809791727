// Reductions: sum, mean, var, max, amax (kernels/reduce): brute force over
// random dim sets, large shapes, thread-count independence, edge cases and bad
// input. Gradient checks, PyTorch values and CUDA parity are rows in tests/ops/reduce.cpp.
#include <omp.h>

#include <random>
#include <set>

#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

using X = std::vector<Tensor>;

// Brute force: out[o] = sum of x over the elements whose kept coordinates give o.
static std::vector<double> naive_sum(const std::vector<double>& x, const Shape& s, const std::set<int64_t>& red) {
  int64_t n_out = 1;
  for (size_t d = 0; d < s.size(); ++d)
    if (!red.count((int64_t)d)) n_out *= s[d];
  std::vector<double> out(n_out, 0.0);
  std::vector<int64_t> idx(s.size(), 0);
  for (size_t k = 0; k < x.size(); ++k) {
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d)
      if (!red.count((int64_t)d)) o = o * s[d] + idx[d];
    out[o] += x[k];
    for (int64_t d = (int64_t)s.size() - 1; d >= 0; --d) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

TEST_CASE("sum/mean/var over random dim sets match brute force") {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> rank_d(1, 4), size_d(1, 6), coin(0, 1);
  for (int trial = 0; trial < 200; ++trial) {
    Shape s(rank_d(rng));
    for (auto& e : s) e = size_d(rng);
    std::vector<int64_t> dims;
    std::set<int64_t> red;
    for (int64_t d = 0; d < (int64_t)s.size(); ++d)
      if (coin(rng)) {
        dims.push_back(coin(rng) ? d : d - (int64_t)s.size());  // negative half the time
        red.insert(d);
      }
    if (dims.empty())
      for (int64_t d = 0; d < (int64_t)s.size(); ++d) red.insert(d);  // empty dims = all
    bool keep = coin(rng);
    CAPTURE(shape_str(s));
    CAPTURE(trial);
    Tensor x = normal(s, 0.5, 1.0, DType::F64);
    auto ref = naive_sum(x.to_vector(), s, red);
    int64_t n_red = 1;
    for (int64_t d : red) n_red *= s[d];
    Tensor y = sum(x, dims, keep);
    check_close(y.to_vector(), ref, 1e-12, 1e-12, "sum");
    std::vector<double> m = ref;
    for (auto& e : m) e /= (double)n_red;
    check_close(mean(x, dims, keep).to_vector(), m, 1e-12, 1e-12, "mean");
    // var via brute force on (x - mean)^2
    std::vector<double> xv = x.to_vector(), sq(xv.size());
    {
      std::vector<int64_t> idx(s.size(), 0);
      for (size_t k = 0; k < xv.size(); ++k) {
        int64_t o = 0;
        for (size_t d = 0; d < s.size(); ++d)
          if (!red.count((int64_t)d)) o = o * s[d] + idx[d];
        sq[k] = (xv[k] - m[o]) * (xv[k] - m[o]);
        for (int64_t d = (int64_t)s.size() - 1; d >= 0; --d) {
          if (++idx[d] < s[d]) break;
          idx[d] = 0;
        }
      }
    }
    auto v = naive_sum(sq, s, red);
    for (auto& e : v) e /= (double)n_red;  // biased
    check_close(var(x, dims, false, keep).to_vector(), v, 1e-12, 1e-10, "var");
    // Shapes: keepdim keeps a 1 in each reduced dim.
    Shape want;
    for (int64_t d = 0; d < (int64_t)s.size(); ++d)
      if (!red.count(d)) want.push_back(s[d]);
      else if (keep) want.push_back(1);
    CHECK(y.shape() == want);
  }
}

TEST_CASE("large reductions: chunked rows, wide columns, float accumulation") {
  // One long row (the chunked path) in f32: double accumulation keeps it exact enough.
  Tensor x = uniform({1 << 17}, 0.0, 1.0, DType::F32);
  double ref = 0;
  for (double v : x.to_vector()) ref += v;
  CHECK(sum(x).item() == doctest::Approx(ref).epsilon(1e-6));
  // Columns wider than one block (I = 700 > 256): sum over dim 1 of (3, 40, 700).
  Tensor c = normal({3, 40, 700}, 0.0, 1.0, DType::F64);
  auto cv = c.to_vector();
  std::vector<double> cref(3 * 700, 0.0);
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t r = 0; r < 40; ++r)
      for (int64_t i = 0; i < 700; ++i) cref[o * 700 + i] += cv[(o * 40 + r) * 700 + i];
  check_close(sum(c, {1}).to_vector(), cref, 1e-12, 1e-12, "column sum");
  // max over columns wider than a block, with gradient to the argmax.
  Tensor cm = c.clone().requires_grad_();
  MaxResult mr = max(cm, 1);
  auto mi = mr.indices.to_vector();
  auto mv = mr.values.to_vector();
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 700; ++i) {
      double best = cv[o * 40 * 700 + i];
      int64_t bi = 0;
      for (int64_t r = 1; r < 40; ++r)
        if (cv[(o * 40 + r) * 700 + i] > best) { best = cv[(o * 40 + r) * 700 + i]; bi = r; }
      REQUIRE(mv[o * 700 + i] == best);
      REQUIRE(mi[o * 700 + i] == bi);
    }
  sum(mr.values).backward();
  CHECK(sum(cm.grad()).item() == 3 * 700);
  // var of a long row with a large mean (two-pass in double: no cancellation).
  Tensor big = normal({1 << 16}, 1e4, 1.0, DType::F32);
  CHECK(var(big, {0}).item() == doctest::Approx(1.0).epsilon(0.03));
}

TEST_CASE("reductions do not depend on the thread count") {
  Tensor x = normal({1 << 18}, 0.0, 1.0, DType::F32);
  Tensor m = normal({64, 3000}, 0.0, 1.0, DType::F32);
  auto run = [&] {
    std::vector<double> out{sum(x).item(), mean(x).item(), var(x, {}).item()};
    for (double v : sum(m, {0}).to_vector()) out.push_back(v);
    for (double v : var(m, {1}).to_vector()) out.push_back(v);
    return out;
  };
  int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  auto a = run();
  omp_set_num_threads(2);
  auto b = run();
  omp_set_num_threads(prev);
  CHECK(a == b);
}

TEST_CASE("reduction edge cases") {
  // max: ties take the first index; NaN wins.
  Tensor t = from_vector({1, 3, 3, 2, std::nan(""), 5}, {2, 3}, DType::F64);
  MaxResult r = max(t, 1);
  CHECK(r.indices.to_vector() == std::vector<double>{1, 1});
  CHECK(r.values.to_vector()[0] == 3);
  CHECK(std::isnan(r.values.to_vector()[1]));
  // keepdim shapes; 0-d input accepts dim 0 / -1.
  CHECK(sum(t, {1}, true).shape() == Shape{2, 1});
  CHECK(sum(t).shape() == Shape{});
  Tensor s = full({}, 2.5, DType::F64);
  CHECK(sum(s, {-1}).item() == 2.5);
  CHECK(max(s, 0).values.item() == 2.5);
  // Empty reductions: sum 0, mean NaN.
  Tensor e = zeros({3, 0}, DType::F64);
  CHECK(sum(e, {1}).to_vector() == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(mean(e, {1}).to_vector()[0]));
  // amax shares the gradient among ties.
  Tensor a = from_vector({1, 4, 4, 2}, {4}, DType::F64).requires_grad_();
  amax(a).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{0, 0.5, 0.5, 0});
  // float32 works end to end.
  Tensor f = from_vector({1, 2, 3, 4}, {2, 2}, DType::F32).requires_grad_();
  Tensor v = var(f, {0});
  CHECK(v.dtype() == DType::F32);
  CHECK(v.to_vector() == std::vector<double>{2, 2});
  sum(v).backward();
  CHECK(f.grad().to_vector() == std::vector<double>{-2, -2, 2, 2});
}

TEST_CASE("reduce bad inputs") {
  Tensor x = normal({2, 3, 4}, 0, 1, DType::F64);
  CHECK_THROWS_WITH_AS(sum(x, {3}), doctest::Contains("sum: dim 3 out of range"), pw::Error);
  CHECK_THROWS_WITH_AS(sum(x, {-4}), doctest::Contains("[2,3,4]"), pw::Error);
  CHECK_THROWS_WITH_AS(sum(x, {1, -2}), doctest::Contains("more than once"), pw::Error);
  CHECK_THROWS_WITH_AS(mean(x, {5}), doctest::Contains("mean: dim 5"), pw::Error);
  CHECK_THROWS_WITH_AS(var(x, {-9}), doctest::Contains("var: dim -9"), pw::Error);
  CHECK_THROWS_WITH_AS(max(x, 3), doctest::Contains("max: dim 3"), pw::Error);
  CHECK_THROWS_WITH_AS(max(zeros({2, 0}, DType::F64), 1), doctest::Contains("max"), pw::Error);
  CHECK_THROWS_WITH_AS(amax(zeros({0}, DType::F64)), doctest::Contains("amax"), pw::Error);
  Tensor i = from_indices({1, 2, 3}, {3});
  CHECK_THROWS_WITH_AS(sum(i), doctest::Contains("sum"), pw::Error);
  CHECK_THROWS_WITH_AS(mean(i, {0}), doctest::Contains("mean"), pw::Error);
  CHECK_THROWS_WITH_AS(var(i, {0}), doctest::Contains("var"), pw::Error);
  CHECK_THROWS_WITH_AS(max(i, 0), doctest::Contains("max"), pw::Error);
  CHECK_THROWS_WITH_AS(amax(i), doctest::Contains("amax"), pw::Error);
}
