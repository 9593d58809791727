#include <omp.h>

#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/reference.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("shape gradients") {
  run_op_cases({
      {"permute_attn", {In({2, 3, 3, 5, 3})}, [](auto& x) { return permute(x[0], {2, 0, 3, 1, 4}); }},
      {"permute_neg", {In({3, 5, 7})}, [](auto& x) { return permute(x[0], {-1, 0, -2}); }},
      {"transpose", {In({3, 1, 5})}, [](auto& x) { return transpose(x[0], 0, -1); }},
      {"concat", {In({3, 2, 5}), In({3, 1, 5}), In({3, 3, 5})},
       [](auto& x) { return concat({x[0], x[1], x[2]}, -2); }},
      {"concat_same_input", {In({3, 5})}, [](auto& x) { return concat({x[0], x[0]}, 0); }},
      {"split", {In({3, 5, 3})},
       [](auto& x) {
         auto p = split(x[0], {2, 0, 3}, 1);
         return concat({p[2], p[1], p[0]}, 1);
       }},
      {"chunk", {In({7, 3})},
       [](auto& x) {
         auto p = chunk(x[0], 3, 0);  // 3, 3, 1 rows
         return concat({p[2], p[0], p[1]}, 0);
       }},
      {"narrow", {In({3, 7})}, [](auto& x) { return narrow(x[0], 1, -5, 3); }},
      {"slice_step", {In({5, 7})}, [](auto& x) { return slice(x[0], -1, -6, 100, 2); }},
      {"pad", {In({3, 5})}, [](auto& x) { return pad(x[0], {2, 1, 1, 3}, 0.3); }},
      {"pad_negative", {In({3, 5, 7})}, [](auto& x) { return pad(x[0], {-2, 1, 1, -1}); }},
      {"roll_two_dims", {In({3, 5, 7})}, [](auto& x) { return roll(x[0], {-2, 9}, {-1, 1}); }},
      {"roll_flat", {In({3, 5})}, [](auto& x) { return roll(x[0], {-4}, {}); }},
      {"repeat", {In({3, 1, 2})}, [](auto& x) { return repeat(x[0], {2, 1, 3, 2}); }},
      {"expand", {In({3, 1, 5})}, [](auto& x) { return expand(x[0], {2, 3, 4, 5}); }},
      {"expand_keep", {In({1, 3})}, [](auto& x) { return expand(x[0], {5, -1}); }},
      {"unsqueeze", {In({3, 5})}, [](auto& x) { return unsqueeze(x[0], -1); }},
      {"squeeze", {In({3, 1, 5})}, [](auto& x) { return squeeze(x[0], 1); }},
      {"flatten", {In({3, 5, 1, 2})}, [](auto& x) { return flatten(x[0], 1, -1); }},
  });
}

TEST_CASE("shape forward and backward match PyTorch") {
  auto cases = load_reference("shape");
  auto ref = [&](const char* name, OpFn fn) {
    CAPTURE(name);
    check_reference(cases.at(name), fn);
  };
  ref("permute_attn", [](auto& x) { return permute(x[0], {2, 0, 3, 1, 4}); });
  ref("permute_nhwc", [](auto& x) { return permute(x[0], {0, 2, 3, -3}); });
  ref("transpose", [](auto& x) { return transpose(x[0], 0, -1); });
  ref("concat", [](auto& x) { return concat({x[0], x[1], x[2]}, 1); });
  ref("concat_last", [](auto& x) { return concat({x[0], x[1]}, -1); });
  ref("split_1", [](auto& x) { return split(x[0], {2, 0, 3}, 0)[1]; });
  ref("split_2", [](auto& x) { return split(x[0], {2, 0, 3}, 0)[2]; });
  ref("chunk_0", [](auto& x) { return chunk(x[0], 3, -1)[0]; });
  ref("chunk_2", [](auto& x) { return chunk(x[0], 3, -1)[2]; });
  ref("narrow", [](auto& x) { return narrow(x[0], 1, -4, 3); });
  ref("slice_step", [](auto& x) { return slice(x[0], 1, -6, 100, 2); });
  ref("slice_neg_end", [](auto& x) { return slice(x[0], 0, 1, -2); });
  ref("pad", [](auto& x) { return pad(x[0], {1, 2, -1, 2}, 0.5); });
  ref("pad_crop", [](auto& x) { return pad(x[0], {-1, -2}); });
  ref("roll", [](auto& x) { return roll(x[0], {-1, 7}, {0, 2}); });
  ref("roll_flat", [](auto& x) { return roll(x[0], {5}, {}); });
  ref("repeat", [](auto& x) { return repeat(x[0], {2, 1, 3}); });
  ref("expand", [](auto& x) { return expand(x[0], {2, 3, 4, 5}); });
  ref("expand_keep", [](auto& x) { return expand(x[0], {2, -1, 4}); });
  ref("flatten", [](auto& x) { return flatten(x[0], 1, 2); });
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
