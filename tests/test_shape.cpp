// Shape ops (kernels/shape): the views' gradients, sizes, i64 copies, large
// permutes, thread-count independence and bad input. Gradient checks, PyTorch
// values and CUDA parity of the copying ops are rows in tests/ops/shape.cpp.
#include <omp.h>

#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/reference.h"

using namespace pw;
using namespace pw::test;

// The views share storage and run no kernel, so they have no dispatch row and no test row.
TEST_CASE("view gradients") {
  run_op_cases({
      {"unsqueeze", {In({3, 5})}, [](auto& x) { return unsqueeze(x[0], -1); }},
      {"squeeze", {In({3, 1, 5})}, [](auto& x) { return squeeze(x[0], 1); }},
      {"flatten", {In({3, 5, 1, 2})}, [](auto& x) { return flatten(x[0], 1, -1); }},
  });
}

TEST_CASE("flatten matches PyTorch") {
  check_reference(load_reference("shape").at("flatten"), [](auto& x) { return flatten(x[0], 1, 2); });
}

TEST_CASE("chunk, split and slice sizes follow torch") {
  Tensor x = uniform({6, 5}, -1, 1, DType::F64);
  auto sizes = [](const std::vector<Tensor>& ts, int64_t d) {
    std::vector<int64_t> s;
    for (auto& t : ts) s.push_back(t.shape()[d]);
    return s;
  };
  CHECK(sizes(chunk(x, 4, 0), 0) == std::vector<int64_t>{2, 2, 2});  // ceil(6/4)=2 -> 3 chunks
  CHECK(sizes(chunk(x, 3, 1), 1) == std::vector<int64_t>{2, 2, 1});
  CHECK(sizes(chunk(x, 9, 1), 1) == std::vector<int64_t>{1, 1, 1, 1, 1});
  CHECK(sizes(chunk(slice(x, 0, 0, 0), 3, 0), 0) == std::vector<int64_t>{0, 0, 0});
  CHECK(slice(x, 1, 4, 2).shape() == Shape{6, 0});       // end before start: empty
  CHECK(slice(x, 1, -100, 100).shape() == Shape{6, 5});  // clamped
  CHECK(slice(x, 0, 1, -1, 3).shape() == Shape{2, 5});   // rows 1, 4
  CHECK(pad(x, {-2, -3}).shape() == Shape{6, 0});
  CHECK(squeeze(x, 0).shape() == Shape{6, 5});  // size 6 is not squeezed (torch)
  CHECK(unsqueeze(x, 2).shape() == Shape{6, 5, 1});
  CHECK(flatten(x).shape() == Shape{30});
  CHECK(expand(x, {0, 6, 5}).numel() == 0);
}

TEST_CASE("permute of size-1 dims only is a view") {
  Tensor x = uniform({4, 1, 5}, -1, 1);
  Tensor y = permute(x, {1, 0, 2});
  CHECK(y.shape() == Shape{1, 4, 5});
  CHECK(y.impl().storage == x.impl().storage);
}

TEST_CASE("shape ops move i64 tensors") {
  Tensor x = from_indices({0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(permute(x, {1, 0}).to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(concat({x, x}, 0).to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5});
  CHECK(pad(x, {1, 0}, 7).to_vector() == std::vector<double>{7, 0, 1, 2, 7, 3, 4, 5});
  CHECK(roll(x, {1}, {1}).to_vector() == std::vector<double>{2, 0, 1, 5, 3, 4});
}

// Straightforward reference: y[i] = x[source multi-index of i], one element at a time.
static std::vector<double> naive_permute(const Tensor& x, const std::vector<int64_t>& dims) {
  auto v = x.to_vector();
  const Shape& xs = x.shape();
  int64_t n = x.dim();
  Shape ys(n), xst(n, 1);
  for (int64_t k = n - 2; k >= 0; --k) xst[k] = xst[k + 1] * xs[k + 1];
  for (int64_t k = 0; k < n; ++k) ys[k] = xs[dims[k]];
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < (int64_t)v.size(); ++i) {
    int64_t r = i, src = 0;
    for (int64_t k = n - 1; k >= 0; --k) {
      src += (r % ys[k]) * xst[dims[k]];
      r /= ys[k];
    }
    out[i] = v[src];
  }
  return out;
}

TEST_CASE("large permutes (tiled and parallel paths) match a naive loop, forward and backward") {
  struct P { Shape s; std::vector<int64_t> d; };
  for (const P& p : {P{{2, 37, 3, 5, 33}, {2, 0, 3, 1, 4}},  // attention qkv: contiguous runs
                     P{{2, 67, 45, 13}, {0, 2, 3, 1}},       // NCHW -> NHWC: tiled transpose
                     P{{3, 70, 130}, {0, 2, 1}},             // last-two-dims transpose
                     P{{9, 11, 13, 7}, {3, 1, 0, 2}}}) {
    CAPTURE(shape_str(p.s));
    Tensor x = uniform(p.s, -1, 1).requires_grad_();
    Tensor y = permute(x, p.d);
    CHECK(y.to_vector() == naive_permute(x, p.d));
    // Backward is the inverse permute: check dx = permute^-1(dy).
    Tensor dy = uniform(y.shape(), -1, 1);
    y.backward(dy);
    std::vector<int64_t> inv(p.d.size());
    for (size_t k = 0; k < p.d.size(); ++k) inv[p.d[k]] = (int64_t)k;
    CHECK(x.grad().to_vector() == naive_permute(dy, inv));
  }
}

TEST_CASE("expand and repeat backward sum in an order independent of the thread count") {
  Tensor b = uniform({1, 1, 97}, -1, 1).requires_grad_();
  Tensor r = uniform({3, 1, 5}, -1, 1).requires_grad_();
  Tensor dy = uniform({8, 61, 97}, -1, 1), dr = uniform({4, 60, 8, 25}, -1, 1);
  auto grads = [&] {
    b.zero_grad();
    r.zero_grad();
    expand(b, {8, 61, 97}).backward(dy);
    repeat(r, {4, 20, 8, 5}).backward(dr);
    return std::make_pair(b.grad().to_vector(), r.grad().to_vector());
  };
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = grads();
  omp_set_num_threads(std::max(threads, 3));
  auto many = grads();
  omp_set_num_threads(threads);
  CHECK(one == many);
  // Bias-like expand: db[c] = sum over (B,N) of dy.
  auto v = dy.to_vector();
  double s0 = 0;
  for (int64_t i = 0; i < 8 * 61; ++i) s0 += v[i * 97];
  CHECK(one.first[0] == doctest::Approx(s0).epsilon(1e-5));
}

TEST_CASE("copies that reach only part of x (or none of it) give zeros elsewhere in the gradient") {
  Tensor x = uniform({2, 3}, -1, 1).requires_grad_();
  repeat(x, {0, 2}).backward(zeros({0, 6}));
  CHECK(x.grad().to_vector() == std::vector<double>(6, 0.0));
  x.zero_grad();
  Tensor dn = uniform({2, 1}, -1, 1);
  narrow(x, 1, 1, 1).backward(dn);
  auto g = x.grad().to_vector(), d = dn.to_vector();
  CHECK(g == std::vector<double>{0, d[0], 0, 0, d[1], 0});
}

TEST_CASE("shape ops reject bad input") {
  Tensor x = uniform({2, 3, 4}, -1, 1);
  auto op = [](const char* name) { return doctest::Contains(name); };
  CHECK_THROWS_WITH_AS(permute(x, {0, 0, 1}), op("permute: dims [0,0,1] repeat dim 0"), pw::Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 1}), op("permute"), pw::Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 1, 3}), op("permute: dim 3 is out of range"), pw::Error);
  CHECK_THROWS_WITH_AS(transpose(x, 0, -4), op("transpose"), pw::Error);
  CHECK_THROWS_WITH_AS(concat({x, uniform({2, 3, 5}, -1, 1)}, 1), op("concat: tensor 1 f32[2,3,5]"), pw::Error);
  CHECK_THROWS_WITH_AS(concat({x, uniform({2, 3}, -1, 1)}, 0), op("concat"), pw::Error);
  CHECK_THROWS_WITH_AS(concat({x, x.to(DType::F64)}, 0), op("concat"), pw::Error);
  CHECK_THROWS_WITH_AS(concat({}, 0), op("concat"), pw::Error);
  CHECK_THROWS_WITH_AS(split(x, {1, 1}, 1), op("split: sizes [1,1] sum to 2"), pw::Error);
  CHECK_THROWS_WITH_AS(split(x, {4, -1}, 1), op("split"), pw::Error);
  CHECK_THROWS_WITH_AS(chunk(x, 0, 1), op("chunk"), pw::Error);
  CHECK_THROWS_WITH_AS(narrow(x, 2, 2, 3), op("narrow"), pw::Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 2, 0), op("slice"), pw::Error);
  CHECK_THROWS_WITH_AS(pad(x, {1, 1, 1}), op("pad"), pw::Error);
  CHECK_THROWS_WITH_AS(pad(x, {-3, -2}), op("pad"), pw::Error);
  CHECK_THROWS_WITH_AS(roll(x, {1, 2}, {0}), op("roll"), pw::Error);
  CHECK_THROWS_WITH_AS(roll(x, {1, 2}, {}), op("roll"), pw::Error);
  CHECK_THROWS_WITH_AS(repeat(x, {2, 2}), op("repeat"), pw::Error);
  CHECK_THROWS_WITH_AS(expand(x, {2, 5, 4}), op("expand: cannot expand"), pw::Error);
  CHECK_THROWS_WITH_AS(expand(x, {-1, 2, 3, 4}), op("expand"), pw::Error);
  CHECK_THROWS_WITH_AS(expand(x, {3, 4}), op("expand"), pw::Error);
  CHECK_THROWS_WITH_AS(unsqueeze(x, 4), op("unsqueeze"), pw::Error);
  CHECK_THROWS_WITH_AS(squeeze(x, 3), op("squeeze"), pw::Error);
  CHECK_THROWS_WITH_AS(flatten(x, 2, 1), op("flatten"), pw::Error);
  CHECK_THROWS_WITH_AS(permute(empty({2, 3}, DType::BF16), {1, 0}), op("permute: expected a f32, f64 or i64"),
                       pw::Error);
}
