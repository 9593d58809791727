// Elementwise properties (the per-op gradient checks, PyTorch references and
// CPU/CUDA parity are test rows: tests/ops/elementwise.cpp).
#include <omp.h>

#include <cmath>
#include <random>

#include "kernels/elementwise/broadcast.h"
#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;


// A tensor used twice: every use adds into its gradient, whether the uses are
// two inputs of one node (x*x) or inputs of different nodes. (The gradcheck
// table's exact "second backward doubles" check cannot hold here: three
// contributions added twice round differently, so these get their own test.)
TEST_CASE("a tensor used twice gets both gradients") {
  Tensor x = normal({3, 5}, 0, 1, DType::F64).requires_grad_();
  Tensor u = normal({3, 5}, 0, 1, DType::F64);
  auto vx = x.to_vector(), vu = u.to_vector();
  auto grad_of = [&](const std::function<Tensor(const Tensor&)>& f) {
    x.zero_grad();
    f(x).backward(u, /*retain_graph=*/true);
    return x.grad().to_vector();
  };
  SUBCASE("x*x") {
    auto g = grad_of([](const Tensor& t) { return t * t; });
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == 2 * (vu[i] * vx[i]));
  }
  SUBCASE("x+x") {
    auto g = grad_of([](const Tensor& t) { return t + t; });
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == 2 * vu[i]);
  }
  SUBCASE("where(c, x, x)") {
    Tensor c = from_indices({1, 0, 2, 0, -1}, {5});
    auto g = grad_of([&](const Tensor& t) { return where(c, t, t); });
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == vu[i]);
  }
  SUBCASE("x - x*x/x, across nodes") {
    // d/dx = 1 - (2x/x - x^2/x^2) = 0: three contributions that must cancel.
    auto g = grad_of([](const Tensor& t) { return t - t * t / t; });
    for (size_t i = 0; i < g.size(); ++i) CHECK(std::abs(g[i]) <= 1e-14 * std::abs(vu[i]));
  }
  SUBCASE("second backward into an existing gradient") {
    Tensor y = x * x;
    x.zero_grad();
    y.backward(u, /*retain_graph=*/true);
    auto g1 = x.grad().to_vector();
    y.backward(u);
    std::vector<double> want(g1.size());
    for (size_t i = 0; i < g1.size(); ++i) want[i] = 2 * g1[i];
    check_close(x.grad().to_vector(), want, 0, 1e-15, "x*x, second backward");
  }
}

TEST_CASE("elementwise float32 agrees with float64") {
  // The f32 instantiations of the same loops, on a broadcast shape.
  Tensor a = normal({3, 1, 5}, 0, 1, DType::F64), b = uniform({4, 5}, 0.5, 2, DType::F64);
  Tensor a32 = a.to(DType::F32).detach().requires_grad_(), b32 = b.to(DType::F32).detach().requires_grad_();
  a.requires_grad_();
  b.requires_grad_();
  auto f = [](const Tensor& u, const Tensor& v) { return where(u, exp(u) * v, sqrt(v) / (u - 3.0)); };
  Tensor y = f(a, b), y32 = f(a32, b32);
  CHECK(y32.dtype() == DType::F32);
  check_close(y32.to_vector(), y.to_vector(), 1e-5, 1e-5, "f32 forward");
  Tensor u = normal(y.shape(), 0, 1, DType::F64);
  y.backward(u);
  y32.backward(u.to(DType::F32));
  check_close(a32.grad().to_vector(), a.grad().to_vector(), 1e-4, 1e-4, "f32 da");
  check_close(b32.grad().to_vector(), b.grad().to_vector(), 1e-4, 1e-4, "f32 db");
}

TEST_CASE("clamp, abs and pow at their edges") {
  Tensor x = from_vector({-2.0, -0.5, 0.0, 0.7, 3.0}, {5}, DType::F64).requires_grad_();
  Tensor y = clamp(x, -0.5, 0.7);
  CHECK(y.to_vector() == std::vector<double>{-0.5, -0.5, 0.0, 0.7, 0.7});
  y.backward(from_vector({1, 1, 1, 1, 1}, {5}, DType::F64));
  // The closed interval passes the gradient (PyTorch's convention).
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 1, 1, 0});
  x.zero_grad();
  abs(x).backward(from_vector({1, 1, 1, 1, 1}, {5}, DType::F64));
  CHECK(x.grad().to_vector() == std::vector<double>{-1, -1, 0, 1, 1});
  x.zero_grad();
  pow(x, 0.0).backward(from_vector({1, 1, 1, 1, 1}, {5}, DType::F64));
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 0, 0});
}

// --- broadcast helpers on shapes large enough to take the threaded paths ---

namespace {
// Reference: dst[j] += sum of src over the elements that map to j, in double.
std::vector<double> naive_sum_to(const Shape& D, const Shape& S, const std::vector<double>& src) {
  const size_t r = S.size();
  Shape Dp(r - D.size(), 1);
  Dp.insert(Dp.end(), D.begin(), D.end());
  std::vector<double> out(numel_of(D), 0.0);
  Shape idx(r, 0);
  for (size_t i = 0; i < src.size(); ++i) {
    int64_t rem = (int64_t)i, j = 0;
    for (int d = (int)r - 1; d >= 0; --d) {
      idx[d] = rem % S[d];
      rem /= S[d];
    }
    for (size_t d = 0; d < r; ++d) j = j * Dp[d] + (Dp[d] == 1 ? 0 : idx[d]);
    out[j] += src[i];
  }
  return out;
}
}  // namespace

TEST_CASE("sum_to_shape_acc and sum_prod_to_shape_acc match a naive sum, deterministically") {
  struct C { Shape dst, src; };
  std::vector<C> cs = {
      {{7}, {50001, 7}},           // inner kept, few dst rows: split reduction
      {{1, 3000}, {40, 3000}},     // inner kept, long rows in column chunks
      {{1}, {200003}},             // inner reduced, one dst element: split
      {{}, {3, 70001}},            // to a 0-d tensor
      {{5, 1}, {5, 40001}},        // inner reduced, few rows
      {{1000, 1}, {1000, 37}},     // inner reduced, many rows
      {{3, 1, 5}, {3, 4001, 5}},   // K R K
      {{2, 1, 3, 1}, {2, 9, 3, 701}},  // K R K R
      {{4, 5}, {3, 4, 5}},         // missing leading dim
      {{3, 4, 5}, {3, 4, 5}},      // nothing to reduce
  };
  for (DType t : {DType::F64, DType::F32}) {
    for (const C& c : cs) {
      CAPTURE(shape_str(c.dst));
      CAPTURE(shape_str(c.src));
      CAPTURE(dtype_name(t));
      Tensor src = normal(c.src, 0, 1, t);
      Tensor d0 = normal(c.dst, 0, 1, t);
      std::vector<double> want = naive_sum_to(c.dst, c.src, src.to_vector());
      std::vector<double> base = d0.to_vector();
      for (size_t i = 0; i < want.size(); ++i) want[i] = base[i] + 0.5 * want[i];
      Tensor d1 = d0.clone(), d2 = d0.clone();
      sum_to_shape_acc(d1, src, 0.5);
      double tol = t == DType::F64 ? 1e-9 : 1e-3;
      check_close(d1.to_vector(), want, tol, tol, "sum_to_shape_acc");
      sum_to_shape_acc(d2, src, 0.5);
      CHECK(d1.to_vector() == d2.to_vector());
      // The fused product form: dst += sum_to(src * f).
      Tensor f = normal(c.src, 0, 1, t), d3 = d0.clone();
      std::vector<double> vs = src.to_vector(), vf = f.to_vector(), prod(vs.size());
      for (size_t i = 0; i < vs.size(); ++i) prod[i] = t == DType::F32 ? (double)((float)vs[i] * (float)vf[i]) : vs[i] * vf[i];
      std::vector<double> want3 = naive_sum_to(c.dst, c.src, prod);
      for (size_t i = 0; i < want3.size(); ++i) want3[i] += base[i];
      sum_prod_to_shape_acc(d3, src, f);
      check_close(d3.to_vector(), want3, tol, tol, "sum_prod_to_shape_acc");
    }
  }
}

TEST_CASE("broadcast forward on large shapes matches naive indexing") {
  // Shapes past kParallelGrain, with a long inner dim (chunked) and a short one.
  std::vector<std::pair<Shape, Shape>> cs = {
      {{3, 1, 20001}, {5, 20001}},
      {{40001, 1}, {1, 3}},
      {{2, 1, 7, 1}, {1, 3001, 1, 5}},
  };
  for (auto& [sa, sb] : cs) {
    const std::string a_shape = shape_str(sa), b_shape = shape_str(sb);  // clang < 16 can't capture bindings
    CAPTURE(a_shape);
    CAPTURE(b_shape);
    Tensor a = normal(sa, 0, 1, DType::F64), b = normal(sb, 0, 1, DType::F64);
    Tensor y = a * b;
    Shape out = broadcast_shapes("test", sa, sb);
    REQUIRE(y.shape() == out);
    auto va = a.to_vector(), vb = b.to_vector(), vy = y.to_vector();
    const size_t r = out.size();
    auto pad = [&](const Shape& s) { Shape p(r - s.size(), 1); p.insert(p.end(), s.begin(), s.end()); return p; };
    Shape pa = pad(sa), pb = pad(sb), idx(r);
    bool ok = true;
    for (int64_t i = 0; i < (int64_t)vy.size() && ok; ++i) {
      int64_t rem = i, ia = 0, ib = 0;
      for (int d = (int)r - 1; d >= 0; --d) { idx[d] = rem % out[d]; rem /= out[d]; }
      for (size_t d = 0; d < r; ++d) {
        ia = ia * pa[d] + (pa[d] == 1 ? 0 : idx[d]);
        ib = ib * pb[d] + (pb[d] == 1 ? 0 : idx[d]);
      }
      ok = vy[i] == va[ia] * vb[ib];
      if (!ok) FAIL_CHECK("element ", i, " got ", vy[i], " expected ", va[ia] * vb[ib]);
    }
  }
}

TEST_CASE("results do not depend on the thread count") {
  // Vectorised transcendentals (simd_math_cpu.h) and split reductions must give
  // bitwise the same numbers on 1 and on 3 threads.
  Tensor x = normal({3, 50021}, 0, 1, DType::F32).requires_grad_();
  Tensor s = normal({3, 1}, 0, 1, DType::F32).requires_grad_();
  Tensor u = normal({3, 50021}, 0, 1, DType::F32);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    x.zero_grad();
    s.zero_grad();
    Tensor y = exp(x) * s + log(abs(x) + 1.0) / s + pow(abs(x), 1.7) * s;
    y.backward(u);
    std::vector<double> out = y.to_vector(), gx = x.grad().to_vector(), gs = s.grad().to_vector();
    out.insert(out.end(), gx.begin(), gx.end());
    out.insert(out.end(), gs.begin(), gs.end());
    return out;
  };
  const int prev = omp_get_max_threads();
  std::vector<double> one = run(1), three = run(3);
  omp_set_num_threads(prev);
  REQUIRE(one.size() == three.size());
  size_t diff = 0;
  for (size_t i = 0; i < one.size(); ++i) diff += one[i] != three[i];
  CHECK(diff == 0);
}

TEST_CASE("broadcast_shapes") {
  CHECK(broadcast_shapes("t", {3, 1, 5}, {4, 5}) == Shape{3, 4, 5});
  CHECK(broadcast_shapes("t", {}, {2, 3}) == Shape{2, 3});
  CHECK(broadcast_shapes("t", {5}, {3, 1}) == Shape{3, 5});
  CHECK(broadcast_shapes("t", {0, 1}, {1, 4}) == Shape{0, 4});
  CHECK_THROWS_WITH_AS(broadcast_shapes("myop", {3, 4}, {5}), doctest::Contains("myop"), pw::Error);
  CHECK_THROWS_WITH_AS(broadcast_shapes("myop", {3, 4}, {5}), doctest::Contains("[3,4]"), pw::Error);
}

TEST_CASE("elementwise bad inputs") {
  Tensor a = normal({3, 4}, 0, 1, DType::F64), b = normal({5}, 0, 1, DType::F64);
  Tensor a32 = normal({3, 4}, 0, 1, DType::F32);
  Tensor i = from_indices({1, 2, 3}, {3});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add"), pw::Error);
  CHECK_THROWS_WITH_AS(a - b, doctest::Contains("sub"), pw::Error);
  CHECK_THROWS_WITH_AS(a * b, doctest::Contains("[3,4] and [5]"), pw::Error);
  CHECK_THROWS_WITH_AS(a / b, doctest::Contains("div"), pw::Error);
  // dtype mismatch names the op and both tensors
  CHECK_THROWS_WITH_AS(a + a32, doctest::Contains("add: dtype mismatch, f64[3,4] vs f32[3,4]"), pw::Error);
  CHECK_THROWS_WITH_AS(mul(a32, a), doctest::Contains("mul"), pw::Error);
  CHECK_THROWS_WITH_AS(i + i, doctest::Contains("add"), pw::Error);
  CHECK_THROWS_WITH_AS(exp(i), doctest::Contains("exp"), pw::Error);
  CHECK_THROWS_WITH_AS(clamp(a, 1.0, -1.0), doctest::Contains("clamp"), pw::Error);
  // where: cond/a/b shapes, a/b dtypes
  Tensor c = from_indices({1, 0, 1, 0}, {4});
  CHECK_THROWS_WITH_AS(where(c, a, b), doctest::Contains("where"), pw::Error);
  CHECK_THROWS_WITH_AS(where(from_indices({1, 0}, {2}), a, a), doctest::Contains("where"), pw::Error);
  CHECK_THROWS_WITH_AS(where(c, a, a32), doctest::Contains("where: dtype mismatch"), pw::Error);
  // masked_fill: the mask must broadcast to x (not the other way round)
  CHECK_THROWS_WITH_AS(masked_fill(a, from_indices({1, 0, 1}, {3}), 0.0), doctest::Contains("masked_fill"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(masked_fill(normal({4}, 0, 1, DType::F64), from_indices({1, 0, 1, 0, 1, 0, 1, 0}, {2, 4}), 0.0),
                       doctest::Contains("masked_fill"), pw::Error);
  // sum_to_shape_acc: dst must broadcast to src
  Tensor d = zeros({2}, DType::F64);
  CHECK_THROWS_WITH_AS(sum_to_shape_acc(d, a), doctest::Contains("sum_to_shape_acc"), pw::Error);
  CHECK_THROWS_WITH_AS(sum_prod_to_shape_acc(d, a, a), doctest::Contains("sum_prod_to_shape_acc"), pw::Error);
  Tensor d4 = zeros({4}, DType::F64);
  CHECK_THROWS_WITH_AS(sum_prod_to_shape_acc(d4, a, normal({4}, 0, 1, DType::F64)),
                       doctest::Contains("must have one shape"), pw::Error);
}

TEST_CASE("empty tensors flow through forward and backward") {
  Tensor a = zeros({0, 3}, DType::F64).requires_grad_();
  Tensor b = normal({3}, 0, 1, DType::F64).requires_grad_();
  Tensor y = where(a, a * b, exp(a) / b) + masked_fill(a, a, 1.0);
  CHECK(y.shape() == Shape{0, 3});
  y.backward(zeros({0, 3}, DType::F64));
  CHECK(b.grad().to_vector() == std::vector<double>{0, 0, 0});
  CHECK(a.grad().numel() == 0);
}
