// conv2d / conv1d and unfold properties (several im2col chunks, float32 against
// float64 at realistic shapes, thread-count independence, bad input). The
// gradient checks, PyTorch values and CPU/CUDA parity are test rows
// (tests/ops/conv.cpp, tests/ops/unfold.cpp).
#include <omp.h>

#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("conv gradients with the batch cut into several im2col chunks") {
  int64_t saved = detail::conv_col_budget();
  detail::conv_col_budget() = 100;  // one image per chunk
  run_op_cases({
      {"conv2d chunked", {In({3, 4, 5, 6}), In({4, 2, 3, 3}), In({4})},
       [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); }},
      {"conv2d 1x1 chunked (x is the column matrix)", {In({3, 4, 3, 5}), In({6, 2, 1, 1}), In({6})},
       [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {0, 0}, {1, 1}, 2); }},
  });
  detail::conv_col_budget() = saved;
}

namespace {
// Runs f in float32 and float64 on the same values; forward and input gradients agree to rtol 1e-4.
void check_f32_vs_f64(const std::vector<Shape>& shapes, const OpFn& f) {
  std::vector<Tensor> x64, x32;
  for (const Shape& s : shapes) {
    Tensor t = normal(s, 0, 1, DType::F64, nullptr);
    x64.push_back(t.clone().requires_grad_());
    x32.push_back(t.to(DType::F32).requires_grad_());
  }
  Tensor y64 = f(x64), y32 = f(x32);
  REQUIRE(y32.dtype() == DType::F32);
  check_close(y32.to_vector(), y64.to_vector(), 1e-4, 1e-4, "forward f32 vs f64");
  Tensor u = normal(y64.shape(), 0, 1, DType::F64, nullptr);
  y64.backward(u);
  y32.backward(u.to(DType::F32));
  for (size_t k = 0; k < shapes.size(); ++k) {
    CAPTURE(k);
    // the weight and bias gradients sum B*OH*OW products: scale the absolute slack with it
    check_close(x32[k].grad().to_vector(), x64[k].grad().to_vector(), 1e-3, 1e-4, "grad f32 vs f64");
  }
}

// Forward and all gradients, float64, at the current OpenMP thread count.
std::vector<std::vector<double>> run_once(const std::vector<Tensor>& inputs, const OpFn& f, const Tensor& u) {
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) xs.push_back(t.clone().requires_grad_());
  Tensor y = f(xs);
  y.backward(u);
  std::vector<std::vector<double>> out{y.to_vector()};
  for (const Tensor& x : xs) out.push_back(x.grad().to_vector());
  return out;
}
}  // namespace

TEST_CASE("float32 conv and unfold agree with float64") {
  check_f32_vs_f64({{4, 16, 17, 15}, {24, 16, 3, 3}, {24}},
                   [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); });
  check_f32_vs_f64({{4, 16, 17, 15}, {24, 4, 3, 3}, {24}},
                   [](auto& x) { return conv2d(x[0], x[1], x[2], {2, 2}, {2, 2}, {2, 2}, 4); });
  check_f32_vs_f64({{3, 32, 24, 24}, {16, 32, 3, 3}, {16}},  // one image per im2col chunk
                   [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); });
  check_f32_vs_f64({{2, 64, 64, 64}, {32, 64, 1, 1}, {32}},  // 1x1, one image per chunk: no im2col
                   [](auto& x) { return conv2d(x[0], x[1], x[2]); });
  check_f32_vs_f64({{8, 32, 14, 14}, {32, 1, 7, 7}, {32}},  // ConvNeXt-style depthwise
                   [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {3, 3}, {1, 1}, 32); });
  check_f32_vs_f64({{16, 3, 32, 32}, {64, 3, 4, 4}, {64}},  // ViT patch embedding
                   [](auto& x) { return conv2d(x[0], x[1], x[2], {4, 4}); });
  check_f32_vs_f64({{4, 12, 50}, {18, 6, 5}, {18}}, [](auto& x) { return conv1d(x[0], x[1], x[2], 2, 2, 1, 2); });
  check_f32_vs_f64({{4, 8, 15, 16}}, [](auto& x) { return unfold(x[0], {3, 3}, {1, 1}, {1, 1}, {2, 2}); });
}

TEST_CASE("float64 conv results do not depend on the thread count") {
  const int threads = omp_get_max_threads();
  auto same = [&](const std::vector<Shape>& shapes, const OpFn& f) {
    std::vector<Tensor> xs;
    for (const Shape& s : shapes) xs.push_back(normal(s, 0, 1, DType::F64, nullptr));
    Tensor u = f(xs);
    u = normal(u.shape(), 0, 1, DType::F64, nullptr);
    omp_set_num_threads(1);
    auto one = run_once(xs, f, u);
    omp_set_num_threads(std::max(2, threads));
    auto many = run_once(xs, f, u);
    omp_set_num_threads(threads);
    CHECK(one == many);
  };
  same({{8, 16, 12, 12}, {24, 8, 3, 3}, {24}}, [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); });
  same({{8, 16, 12, 12}, {32, 1, 5, 5}, {32}}, [](auto& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {2, 2}, {1, 1}, 16); });
  same({{8, 16, 12, 12}}, [](auto& x) { return unfold(x[0], {3, 3}, {1, 1}, {1, 1}); });
}

TEST_CASE("conv and unfold reject bad input") {
  Tensor x = zeros({2, 4, 8, 8}, DType::F64);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3}, DType::F64), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3),
                       doctest::Contains("conv2d: groups = 3"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({5, 2, 3, 3}, DType::F64), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                       doctest::Contains("conv2d: groups = 2"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 3, 3, 3}, DType::F64)), doctest::Contains("conv2d: weight"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3}, DType::F64)), doctest::Contains("conv2d"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(zeros({4, 8, 8}, DType::F64), zeros({6, 4, 3, 3}, DType::F64)),
                       doctest::Contains("conv2d"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 9, 3}, DType::F64)), doctest::Contains("conv2d: output size"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3}, DType::F64), Tensor(), {1, 1}, {0, 0}, {4, 4}),
                       doctest::Contains("conv2d: output size"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3}, DType::F64), zeros({5}, DType::F64)),
                       doctest::Contains("conv2d: bias"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3})), doctest::Contains("conv2d"), pw::Error);  // f32 vs f64
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3}, DType::F64), Tensor(), {0, 1}), doctest::Contains("conv2d: stride"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3}, DType::F64), Tensor(), {1, 1}, {-1, 0}),
                       doctest::Contains("conv2d: padding"), pw::Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 4, 3, 3}, DType::F64), Tensor(), {1, 1}, {0, 0}, {1, 1}, 0),
                       doctest::Contains("conv2d: groups"), pw::Error);
  Tensor x1 = zeros({2, 4, 5}, DType::F64);
  CHECK_THROWS_WITH_AS(conv1d(x1, zeros({6, 4, 7}, DType::F64)), doctest::Contains("conv1d: output length"), pw::Error);
  CHECK_THROWS_WITH_AS(conv1d(x1, zeros({6, 3, 3}, DType::F64)), doctest::Contains("conv1d: weight"), pw::Error);
  CHECK_THROWS_WITH_AS(conv1d(x, zeros({6, 4, 3}, DType::F64)), doctest::Contains("conv1d"), pw::Error);
  CHECK_THROWS_WITH_AS(conv1d(x1, zeros({6, 4, 3}, DType::F64), Tensor(), 0), doctest::Contains("conv1d"), pw::Error);
  CHECK_THROWS_WITH_AS(unfold(zeros({4, 8, 8}), {2, 2}), doctest::Contains("unfold"), pw::Error);
  CHECK_THROWS_WITH_AS(unfold(x, {9, 2}), doctest::Contains("unfold: output size"), pw::Error);
  CHECK_THROWS_WITH_AS(unfold(x, {0, 2}), doctest::Contains("unfold: kernel"), pw::Error);
}
