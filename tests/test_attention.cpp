// The fused attention core (kernels/attention) against its composition from
// primitive ops, PyTorch, and itself on other thread counts.
#include <omp.h>

#include <cmath>

#include "autograd/ops.h"
#include "tests/gradcheck.h"
#include "tests/reference.h"

using namespace pw;
using namespace pw::test;

using X = const std::vector<Tensor>&;

namespace {

// The unfused attention of nn/layers.cpp.   qkv: (B,N,3*NH*HD) -> (B,N,NH*HD)
Tensor attention_composed(const Tensor& qkv, int64_t heads, double scale) {
  int64_t B = qkv.size(0), N = qkv.size(1), hd = qkv.size(2) / (3 * heads);
  Tensor t = permute(qkv.reshape({B, N, 3, heads, hd}), {2, 0, 3, 1, 4});
  std::vector<Tensor> p = chunk(t, 3, 0);
  Tensor q = p[0].reshape({B, heads, N, hd}), k = p[1].reshape({B, heads, N, hd}), v = p[2].reshape({B, heads, N, hd});
  Tensor a = softmax(matmul(q * scale, transpose(k, -2, -1)), -1);
  return permute(matmul(a, v), {0, 2, 1, 3}).reshape({B, N, heads * hd});
}

// y and dL/dqkv for upstream u.
std::pair<std::vector<double>, std::vector<double>> run(const Tensor& qkv0, const Tensor& u, bool fused,
                                                         int64_t heads, double scale) {
  Tensor qkv = qkv0.detach().requires_grad_();
  Tensor y = fused ? attention_qkv(qkv, heads, scale) : attention_composed(qkv, heads, scale);
  y.backward(u);
  return {y.to_vector(), qkv.grad().to_vector()};
}

}  // namespace

TEST_CASE("attention gradients") {
  run_op_cases({
      {"attention_qkv", {In({2, 5, 36})}, [](X x) { return attention_qkv(x[0], 3, 0.5); }},
      {"attention_qkv one head", {In({3, 7, 18})}, [](X x) { return attention_qkv(x[0], 1, 0.41); }},
      {"attention_qkv one token", {In({2, 1, 12})}, [](X x) { return attention_qkv(x[0], 2, 1.0); }},
      // qkv also feeds a second op: one of the two backward writes finds a fresh buffer, the other adds.
      {"attention_qkv shared input", {In({2, 5, 36})},
       [](X x) { return attention_qkv(x[0], 3, 0.5) * narrow(x[0], 2, 4, 12); }},
  });
}

TEST_CASE("attention matches PyTorch") {
  auto cases = load_reference("attention");
  SUBCASE("b2_n5_h3_d4") { check_reference(cases.at("b2_n5_h3_d4"), [](X x) { return attention_qkv(x[0], 3, 0.5); }); }
  SUBCASE("b3_n7_h1_d6") {
    check_reference(cases.at("b3_n7_h1_d6"), [](X x) { return attention_qkv(x[0], 1, 1 / std::sqrt(6.0)); });
  }
  SUBCASE("b1_n1_h2_d3") { check_reference(cases.at("b1_n1_h2_d3"), [](X x) { return attention_qkv(x[0], 2, 1.0); }); }
}

TEST_CASE("attention_qkv equals the composed attention") {
  // Realistic shapes in float32 (SimpleViT's and a ViT-S-like one) and a float64 one.
  struct Case { Shape s; int64_t heads; DType t; double tol; };
  for (const Case& c : {Case{{16, 49, 192}, 4, DType::F32, 2e-5}, Case{{2, 197, 3 * 384}, 6, DType::F32, 2e-5},
                        Case{{4, 9, 3 * 2 * 5}, 2, DType::F64, 1e-13}}) {
    CAPTURE(shape_str(c.s));
    double scale = 1 / std::sqrt((double)(c.s[2] / 3 / c.heads));
    Tensor qkv = normal(c.s, 0, 1, c.t);
    Tensor u = normal({c.s[0], c.s[1], c.s[2] / 3}, 0, 1, c.t);
    auto fused = run(qkv, u, true, c.heads, scale), ref = run(qkv, u, false, c.heads, scale);
    check_close(fused.first, ref.first, c.tol, c.tol, "forward");
    check_close(fused.second, ref.second, c.tol, c.tol, "grad");
  }
}

TEST_CASE("attention_qkv adds into a gradient buffer other ops also fill (float32)") {
  // qkv feeds the attention and a narrow: whichever backward runs second adds.
  for (int64_t N : {11, 130}) {  // small_gemm and dnnl_sgemm paths
    CAPTURE(N);
    Tensor qkv0 = normal({3, N, 3 * 2 * 8}, 0, 1), u = normal({3, N, 16}, 0, 1);
    auto grad = [&](bool fused) {
      Tensor qkv = qkv0.detach().requires_grad_();
      Tensor y = (fused ? attention_qkv(qkv, 2, 0.3) : attention_composed(qkv, 2, 0.3)) * narrow(qkv, 2, 5, 16);
      y.backward(u);
      return qkv.grad().to_vector();
    };
    check_close(grad(true), grad(false), 2e-5, 2e-5, "grad");
  }
}

TEST_CASE("attention_qkv does not depend on the thread count") {
  const int threads = omp_get_max_threads();
  for (DType t : {DType::F32, DType::F64}) {
    Tensor qkv = normal({8, 13, 3 * 4 * 8}, 0, 1, t), u = normal({8, 13, 32}, 0, 1, t);
    omp_set_num_threads(1);
    auto one = run(qkv, u, true, 4, 0.35);
    omp_set_num_threads(std::max(2, threads));
    auto many = run(qkv, u, true, 4, 0.35);
    omp_set_num_threads(threads);
    CHECK(one == many);
  }
}

TEST_CASE("attention_qkv rejects bad input") {
  Tensor x = zeros({2, 5, 36});
  CHECK_THROWS_WITH_AS(attention_qkv(zeros({10, 36}), 3, 1.0), doctest::Contains("attention_qkv"), pw::Error);
  CHECK_THROWS_WITH_AS(attention_qkv(x, 5, 1.0), doctest::Contains("attention_qkv"), pw::Error);
  CHECK_THROWS_WITH_AS(attention_qkv(x, 0, 1.0), doctest::Contains("attention_qkv"), pw::Error);
  CHECK_THROWS_WITH_AS(attention_qkv(zeros({2, 5, 0}), 1, 1.0), doctest::Contains("attention_qkv"), pw::Error);
  CHECK_THROWS_WITH_AS(attention_qkv(from_indices({0, 1, 2}, {1, 1, 3}), 1, 1.0), doctest::Contains("attention_qkv"),
                       pw::Error);
}
