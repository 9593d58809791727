// The fused attention core (kernels/attention) against its composition from
// primitive ops and itself on other thread counts (PyTorch values: tests/ops/attention.cpp).
#include <omp.h>

#include <cmath>
#include <map>

#include "kernels/ops.h"
#include "nn/layers.h"
#include "tests/gradcheck.h"

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

// The same with an additive logits term, as nn/layers.cpp composes it.   bias: broadcastable to (B,NH,N,N)
Tensor attention_bias_composed(const Tensor& qkv, const Tensor& bias, int64_t heads, double scale) {
  int64_t B = qkv.size(0), N = qkv.size(1), hd = qkv.size(2) / (3 * heads);
  Tensor t = permute(qkv.reshape({B, N, 3, heads, hd}), {2, 0, 3, 1, 4});
  std::vector<Tensor> p = chunk(t, 3, 0);
  Tensor q = p[0].reshape({B, heads, N, hd}), k = p[1].reshape({B, heads, N, hd}), v = p[2].reshape({B, heads, N, hd});
  Tensor a = softmax(matmul(q * scale, transpose(k, -2, -1)) + bias, -1);
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

// The gradient checks, float32-vs-float64, CPU/CUDA parity and PyTorch values are
// test rows: tests/ops/attention.cpp.

TEST_CASE("attention adds into a gradient buffer other ops also fill") {
  // qkv (and bias) also feed a second op: one of the two backward writes finds a fresh
  // buffer, the other adds. (Not test rows: their parity's exact "twice the gradient"
  // check does not hold for a sum of two contributions.)
  run_op_cases({
      {"attention_qkv shared input", {In({2, 5, 36})},
       [](X x) { return attention_qkv(x[0], 3, 0.5) * narrow(x[0], 2, 4, 12); }},
      {"attention_qkv_bias shared input", {In({2, 5, 36}), In({3, 5, 5})},
       [](X x) { return attention_qkv_bias(x[0], x[1], 3, 0.5) * narrow(x[0], 2, 4, 12) + sum(x[1]); }},
  });
}

TEST_CASE("attention_qkv_bias equals the composed attention") {
  // float32 on both CPU kernels (small_gemm for N < 128, gemm above) and float64.
  struct Case { Shape qkv, bias; int64_t heads; DType t; double tol; };
  for (const Case& c : {Case{{4, 49, 3 * 4 * 16}, {4, 49, 49}, 4, DType::F32, 2e-5},
                        Case{{2, 130, 3 * 2 * 16}, {2, 1, 130, 130}, 2, DType::F32, 2e-5},
                        Case{{3, 9, 3 * 2 * 5}, {9, 9}, 2, DType::F64, 1e-13},
                        Case{{3, 9, 3 * 2 * 5}, {3, 2, 9, 9}, 2, DType::F64, 1e-13}}) {
    CAPTURE(shape_str(c.qkv));
    CAPTURE(shape_str(c.bias));
    const double scale = 1 / std::sqrt((double)(c.qkv[2] / 3 / c.heads));
    Tensor qkv0 = normal(c.qkv, 0, 1, c.t), bias0 = normal(c.bias, 0, 1, c.t);
    Tensor u = normal({c.qkv[0], c.qkv[1], c.qkv[2] / 3}, 0, 1, c.t);
    std::vector<std::vector<double>> got[2];
    for (int fused = 0; fused < 2; ++fused) {
      Tensor qkv = qkv0.detach().requires_grad_(), bias = bias0.detach().requires_grad_();
      Tensor y = fused ? attention_qkv_bias(qkv, bias, c.heads, scale) : attention_bias_composed(qkv, bias, c.heads, scale);
      y.backward(u);
      got[fused] = {y.to_vector(), qkv.grad().to_vector(), bias.grad().to_vector()};
    }
    check_close(got[1][0], got[0][0], c.tol, c.tol, "forward");
    check_close(got[1][1], got[0][1], c.tol, c.tol, "dqkv");
    check_close(got[1][2], got[0][2], c.tol, c.tol, "dbias");
  }
}

TEST_CASE("attention_qkv_bias: a -inf mask entry removes that key") {
  // Key 0 masked for every query: changing token 0's k and v must not change y.
  const int64_t B = 2, N = 6, NH = 2, HD = 4, D = NH * HD;
  std::vector<double> m(N * N, 0.0);
  for (int64_t i = 0; i < N; ++i) m[i * N] = -INFINITY;
  Tensor mask = from_vector(m, {N, N}, DType::F64);
  std::vector<double> a = normal({B, N, 3 * D}, 0, 1, DType::F64).to_vector(), b = a;
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = D; c < 3 * D; ++c) b[bi * N * 3 * D + c] += 1.5;  // token 0: k and v only
  Tensor ya = attention_qkv_bias(from_vector(a, {B, N, 3 * D}, DType::F64), mask, NH, 0.5);
  Tensor yb = attention_qkv_bias(from_vector(b, {B, N, 3 * D}, DType::F64), mask, NH, 0.5);
  check_close(ya.to_vector(), yb.to_vector(), 1e-14, 1e-12, "masked key");
  check_close(ya.to_vector(), attention_bias_composed(from_vector(a, {B, N, 3 * D}, DType::F64), mask, NH, 0.5).to_vector(),
              1e-13, 1e-13, "masked vs composed");
}

TEST_CASE("attention_qkv_bias does not depend on the thread count") {
  const int threads = omp_get_max_threads();
  for (DType t : {DType::F32, DType::F64}) {
    Tensor qkv0 = normal({8, 13, 3 * 4 * 8}, 0, 1, t), bias0 = normal({13, 13}, 0, 1, t);
    Tensor u = normal({8, 13, 32}, 0, 1, t);
    auto run_bias = [&] {
      Tensor qkv = qkv0.detach().requires_grad_(), bias = bias0.detach().requires_grad_();
      Tensor y = attention_qkv_bias(qkv, bias, 4, 0.35);
      y.backward(u);
      return std::vector<std::vector<double>>{y.to_vector(), qkv.grad().to_vector(), bias.grad().to_vector()};
    };
    omp_set_num_threads(1);
    auto one = run_bias();
    omp_set_num_threads(std::max(2, threads));
    auto many = run_bias();
    omp_set_num_threads(threads);
    CHECK(one == many);
  }
}

TEST_CASE("attention_qkv_bias rejects bad input") {
  Tensor x = zeros({2, 5, 36});
  auto bad = [&](const Tensor& q, const Tensor& b) {
    CHECK_THROWS_WITH_AS(attention_qkv_bias(q, b, 3, 1.0), doctest::Contains("attention_qkv_bias"), pw::Error);
  };
  bad(x, zeros({5, 4}));          // not (N,N)
  bad(x, zeros({2, 5, 5}));       // 2 heads for 3
  bad(x, zeros({3, 3, 5, 5}));    // batch 3 for 2
  bad(x, zeros({1, 2, 3, 5, 5})); // 5 dims
  bad(x, zeros({5}));             // 1 dim
  bad(x, Tensor());               // undefined
  bad(x, zeros({5, 5}, DType::F64));
  bad(zeros({10, 36}), zeros({5, 5}));
  CHECK(attention_bias_fits({5, 5}, 2, 3, 5));
  CHECK(attention_bias_fits({1, 3, 5, 5}, 2, 3, 5));
  CHECK(attention_bias_fits({2, 1, 5, 5}, 2, 3, 5));
  CHECK_FALSE(attention_bias_fits({2, 5, 5}, 2, 3, 5));
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

namespace {
// A learned (NH,N,N) bias that offers itself as a static bias: Attention runs it fused.
struct StaticBias : AttentionTerm {
  Tensor bias;
  explicit StaticBias(Tensor b) { bias = add_param("bias", b); }
  Tensor logits_term(const Tensor& q, const Tensor& k) override { return bias; }
  Tensor static_bias() override { return bias; }
};
// The same bias through logits_term only: Attention composes the logits op by op.
struct ComposedBias : StaticBias {
  using StaticBias::StaticBias;
  Tensor static_bias() override { return Tensor(); }
};
}  // namespace

TEST_CASE("Attention runs a static-bias term through attention_qkv_bias") {
  const int64_t B = 2, N = 7, D = 16, NH = 2, HD = 8;
  Attention fused(D, NH, HD, /*qkv_bias=*/true), composed(D, NH, HD, true);
  composed.load_state_dict(std::map<std::string, Tensor>{{"qkv.weight", fused.qkv->weight},
                                                         {"qkv.bias", fused.qkv->bias},
                                                         {"proj.weight", fused.proj->weight},
                                                         {"proj.bias", fused.proj->bias}});
  Tensor b = normal({NH, N, N}, 0, 1);
  auto tf = std::make_shared<StaticBias>(b.clone());
  auto tc = std::make_shared<ComposedBias>(b.clone());
  fused.set_term(tf);  // after load_state_dict: the strict load knows no term
  composed.set_term(tc);
  Tensor x = normal({B, N, D}, 0, 1), u = normal({B, N, D}, 0, 1);
  Tensor yf = fused(x), yc = composed(x);
  check_close(yf.to_vector(), yc.to_vector(), 2e-5, 2e-5, "forward");
  yf.backward(u);
  yc.backward(u);
  check_close(tf->bias.grad().to_vector(), tc->bias.grad().to_vector(), 2e-5, 2e-5, "dbias");
  check_close(fused.qkv->weight.grad().to_vector(), composed.qkv->weight.grad().to_vector(), 2e-5, 2e-5, "dW");
}
