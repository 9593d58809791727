// Index ops (kernels/index): output shapes, i64 rows, thread-count independence and
// bad input. Gradient checks, PyTorch values and CUDA parity are rows in tests/ops/index.cpp.
#include <omp.h>

#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("embedding output shape and i64 rows") {
  Tensor w = uniform({10, 4}, -1, 1);
  CHECK(embedding(w, from_indices({1, 2, 3, 4, 5, 6}, {2, 1, 3})).shape() == Shape{2, 1, 3, 4});
  CHECK(embedding(w, from_indices({7}, {})).shape() == Shape{4});
  Tensor labels = from_indices({10, 11, 12, 13, 14, 15}, {3, 2});
  CHECK(index_select(labels, 0, from_indices({2, 0}, {2})).to_vector() == std::vector<double>{14, 15, 10, 11});
  CHECK(gather(labels, 1, from_indices({1, 0, 0}, {3, 1})).to_vector() == std::vector<double>{11, 12, 14});
}

TEST_CASE("index backward is independent of the thread count on large inputs") {
  // Heavy repetition (a 50-row vocabulary for 3000 lookups) and sizes above the parallel grain.
  std::vector<int64_t> ids(3000), cols(600 * 80);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = (int64_t)((i * 7919) % 50);
  for (size_t i = 0; i < cols.size(); ++i) cols[i] = (int64_t)((i * 104729) % 33);
  Tensor tok = from_indices(ids, {30, 100}), g_idx = from_indices(cols, {600, 80});
  Tensor w = uniform({50, 24}, -1, 1).requires_grad_();
  Tensor x = uniform({600, 33}, -1, 1).requires_grad_();
  Tensor dy = uniform({30, 100, 24}, -1, 1), dg = uniform({600, 80}, -1, 1);
  auto grads = [&] {
    w.zero_grad();
    x.zero_grad();
    embedding(w, tok).backward(dy);
    gather(x, 1, g_idx).backward(dg);
    return std::make_pair(w.grad().to_vector(), x.grad().to_vector());
  };
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = grads();
  omp_set_num_threads(std::max(threads, 3));
  auto many = grads();
  omp_set_num_threads(threads);
  CHECK(one == many);
  // dw[v] = sum of dy rows whose token is v, in token order.
  auto d = dy.to_vector();
  std::vector<double> ref(50 * 24, 0.0);
  for (size_t i = 0; i < ids.size(); ++i)
    for (int k = 0; k < 24; ++k) ref[ids[i] * 24 + k] += d[i * 24 + k];
  check_close(one.first, ref, 1e-5, 1e-5, "embedding dweight");
}

TEST_CASE("index ops reject bad input") {
  Tensor w = uniform({7, 3}, -1, 1);
  Tensor x = uniform({3, 5, 2}, -1, 1);
  auto has = [](const char* s) { return doctest::Contains(s); };
  // The message names the op, the bad value, its position and the valid range.
  CHECK_THROWS_WITH_AS(embedding(w, from_indices({1, 2, 3, 4, 9, 0}, {2, 3})),
                       has("embedding: index 9 at position [1,1] of indices i64[2,3] is out of range for the 7 "
                           "rows of weight f32[7,3] (valid indices are 0..6)"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(embedding(w, from_indices({-1}, {1})), has("embedding: index -1 at position [0]"), pw::Error);
  CHECK_THROWS_WITH_AS(embedding(w, from_vector({1, 2}, {2}, DType::F32)), has("embedding: indices must be i64"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(embedding(uniform({7}, -1, 1), from_indices({1}, {1})), has("embedding: weight must be (V,D)"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(index_select(x, 1, from_indices({0, 5}, {2})),
                       has("index_select: index 5 at position [1]"), pw::Error);
  CHECK_THROWS_WITH_AS(index_select(x, 1, from_vector({0}, {1}, DType::F64)), has("index_select: indices must be i64"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(index_select(x, 3, from_indices({0}, {1})), has("index_select: dim 3"), pw::Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, from_indices({0, 1}, {1, 2})), has("index_select: indices must be 1-D"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(gather(x, -1, from_indices({0, 1, 2, 1}, {2, 1, 2})),
                       has("gather: index 2 at position [1,0,0]"), pw::Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, from_indices({0, 1}, {2})), has("gather: indices i64[2] must have the same"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, from_indices(std::vector<int64_t>(24, 0), {4, 3, 2})),
                       has("gather: indices i64[4,3,2] are larger than"), pw::Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, from_vector({0}, {1, 1, 1}, DType::F32)), has("gather: indices must be i64"),
                       pw::Error);
}
