// linear_attention_qkv beyond its test rows (tests/ops/linear_attention.cpp): it
// equals its quadratic form computed directly; a key mask gives padded keys no
// attention and leaves the other tokens' outputs as without them; causal never
// reads the future; bad inputs; and a tiny ViT with linear attention trains.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "nn/module.h"
#include "tests/gradcheck.h"
#include "trainers/config.h"
#include "trainers/optim.h"
#include "trainers/trainer.h"

using namespace pw;
using pw::test::check_close;

namespace {

Tensor randn(const Shape& s, DType t = DType::F64) {
  std::normal_distribution<double> nd(0, 1);
  std::vector<double> v(numel_of(s));
  for (auto& e : v) e = nd(pw::test::test_rng());
  return from_vector(v, s, t);
}

// y (B,N,NH*HD) by the quadratic form, in double, straight from the definition:
//   w_ij = m_j * (taylor: 1 + q^_i.k^_j;  elu: (elu(q_i)+1).(elu(k_j)+1)),  j <= i when causal
//   y_i  = sum_j w_ij v_j / (sum_j w_ij + 1e-6)
std::vector<double> quadratic(const std::vector<double>& qkv, const std::vector<double>& mask, int64_t B, int64_t N,
                              int64_t NH, int64_t HD, bool taylor, bool causal) {
  const int64_t D = NH * HD, ld = 3 * D;
  std::vector<double> y(B * N * D, 0.0);
  auto feat = [&](const double* x, int64_t c) { return x[c] > 0 ? x[c] + 1 : std::exp(x[c]); };
  auto norm = [&](const double* x) {
    double s = 0;
    for (int64_t c = 0; c < HD; ++c) s += x[c] * x[c];
    return std::sqrt(s);
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t i = 0; i < N; ++i) {
        const double* q = qkv.data() + (b * N + i) * ld + h * HD;
        double z = 0;
        std::vector<double> num(HD, 0.0);
        for (int64_t j = 0; j < N; ++j) {
          if (causal && j > i) continue;
          const double* k = qkv.data() + (b * N + j) * ld + D + h * HD;
          const double* v = k + D;
          double w = 0;
          if (taylor) {
            double dot = 0;
            for (int64_t c = 0; c < HD; ++c) dot += q[c] * k[c];
            w = 1 + dot / (norm(q) * norm(k));
          } else {
            for (int64_t c = 0; c < HD; ++c) w += feat(q, c) * feat(k, c);
          }
          w *= mask.empty() ? 1.0 : mask[b * N + j];
          z += w;
          for (int64_t c = 0; c < HD; ++c) num[c] += w * v[c];
        }
        for (int64_t c = 0; c < HD; ++c) y[(b * N + i) * D + h * HD + c] = num[c] / (z + 1e-6);
      }
  return y;
}

}  // namespace

TEST_CASE("linear attention equals its quadratic form phi(Q) phi(K)^T V, normalised, computed directly") {
  const int64_t B = 2, N = 11, NH = 3, HD = 5;
  for (bool taylor : {true, false})
    for (bool causal : {false, true})
      for (bool masked : {false, true}) {
        CAPTURE(taylor);
        CAPTURE(causal);
        CAPTURE(masked);
        Tensor qkv = randn({B, N, 3 * NH * HD});
        std::vector<double> m;
        Tensor mask;
        if (masked) {
          m.assign(B * N, 1.0);
          m[3] = m[N - 1] = m[N + 7] = 0.0;  // padding need not be at the end
          mask = from_vector(m, {B, N}, DType::F64);
        }
        Tensor y = linear_attention_qkv(qkv, NH, taylor ? LinearFeatureMap::Taylor : LinearFeatureMap::Elu,
                                        causal, mask);
        check_close(y.to_vector(), quadratic(qkv.to_vector(), m, B, N, NH, HD, taylor, causal), 1e-12, 1e-10,
                    "linear attention vs quadratic form");
        // float32: the same within float32 rounding
        Tensor y32 = linear_attention_qkv(qkv.to(DType::F32), NH,
                                          taylor ? LinearFeatureMap::Taylor : LinearFeatureMap::Elu, causal,
                                          masked ? mask.to(DType::F32) : Tensor());
        check_close(y32.to_vector(), y.to_vector(), 1e-5, 1e-4, "float32");
      }
}

TEST_CASE("key mask: padded keys get no attention and the real tokens' outputs are as without them") {
  const int64_t B = 2, N = 9, NH = 2, HD = 4, pad = 3, D = NH * HD;
  for (auto fm : {LinearFeatureMap::Taylor, LinearFeatureMap::Elu})
    for (bool causal : {false, true}) {
      CAPTURE(causal);
      Tensor qkv = randn({B, N, 3 * D}).requires_grad_();
      std::vector<double> m(B * N, 1.0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = N - pad; j < N; ++j) m[b * N + j] = 0.0;
      Tensor mask = from_vector(m, {B, N}, DType::F64);
      Tensor y = linear_attention_qkv(qkv, NH, fm, causal, mask);
      // the first N - pad tokens alone, no mask
      Tensor short_qkv = narrow(qkv.detach(), 1, 0, N - pad);
      Tensor ys = linear_attention_qkv(short_qkv, NH, fm, causal);
      check_close(narrow(y.detach(), 1, 0, N - pad).to_vector(), ys.to_vector(), 1e-12, 1e-10, "real tokens");
      // the padded keys and values get no gradient: no query attends to them
      y.backward(randn(y.shape()));
      std::vector<double> g = qkv.grad().to_vector();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = N - pad; j < N; ++j)
          for (int64_t c = D; c < 3 * D; ++c) CHECK(g[(b * N + j) * 3 * D + c] == 0.0);
      // and changing them changes no output
      std::vector<double> x2 = qkv.detach().to_vector();
      for (int64_t c = D; c < 3 * D; ++c) x2[(N - 1) * 3 * D + c] += 5.0;
      Tensor y2 = linear_attention_qkv(from_vector(x2, qkv.shape(), DType::F64), NH, fm, causal, mask);
      check_close(y2.to_vector(), y.detach().to_vector(), 1e-12, 1e-10, "padded key changed");
    }
}

TEST_CASE("causal linear attention never reads the future") {
  const int64_t B = 2, N = 10, NH = 2, HD = 4, D = NH * HD, t = 6;
  for (auto fm : {LinearFeatureMap::Taylor, LinearFeatureMap::Elu})
    for (DType dt : {DType::F64, DType::F32}) {
      Tensor qkv = randn({B, N, 3 * D}, dt);
      Tensor y = linear_attention_qkv(qkv, NH, fm, true);
      std::vector<double> x2 = qkv.to_vector();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = t; j < N; ++j)
          for (int64_t c = 0; c < 3 * D; ++c) x2[(b * N + j) * 3 * D + c] += 3.0;
      Tensor y2 = linear_attention_qkv(from_vector(x2, qkv.shape(), dt), NH, fm, true);
      std::vector<double> a = y.to_vector(), c = y2.to_vector();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < N; ++i)
          for (int64_t k = 0; k < D; ++k) {
            const int64_t at = (b * N + i) * D + k;
            if (i < t) CHECK(a[at] == c[at]);  // bit for bit: the prefix is summed before token t is read
          }
      CHECK(a != c);
    }
}

TEST_CASE("linear attention: bad inputs name the op and the shapes") {
  Tensor qkv = randn({2, 5, 24});
  CHECK_THROWS_WITH_AS(linear_attention_qkv(qkv, 5, LinearFeatureMap::Taylor),
                       doctest::Contains("linear_attention_qkv: expected qkv of shape (B,N,3*heads*dim_head)"),
                       Error);
  CHECK_THROWS_WITH_AS(linear_attention_qkv(qkv, 2, LinearFeatureMap::Elu, false, randn({2, 4})),
                       doctest::Contains("key_mask"), Error);
  CHECK_THROWS_WITH_AS(linear_attention_qkv(qkv, 2, LinearFeatureMap::Elu, false, randn({2, 5}, DType::F32)),
                       doctest::Contains("linear_attention_qkv"), Error);
  CHECK(linear_feature_map("taylor") == LinearFeatureMap::Taylor);
  CHECK(linear_feature_map("elu") == LinearFeatureMap::Elu);
  CHECK_THROWS_WITH_AS(linear_feature_map("relu"), doctest::Contains("expected taylor or elu"), Error);
}

TEST_CASE("a tiny simple_vit with linear attention lowers the loss in a few dozen steps") {
  for (std::string kind : {"linear_taylor", "linear_elu"}) {
    CAPTURE(kind);
    Config c = Config::parse(std::string("model:\n  type: simple_vit\n  image_size: 8\n  patch_size: 2\n"
                                         "  channels: 1\n  num_classes: 4\n  dim: 32\n  depth: 2\n  heads: 2\n"
                                         "  dim_head: 8\n  mlp_dim: 64\n  attention: ") +
                                 kind + "\n",
                             "tiny.yaml");
    std::shared_ptr<Module> model = build_model(c);
    // 16 images of 4 classes: a bright 4x4 quadrant per class, plus noise
    const int64_t B = 16;
    std::vector<double> img(B * 64), lab(B);
    std::normal_distribution<double> nd(0, 0.3);
    std::mt19937_64 rng(11);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t cls = b % 4, r0 = (cls / 2) * 4, c0 = (cls % 2) * 4;
      lab[b] = (double)cls;
      for (int64_t y = 0; y < 8; ++y)
        for (int64_t x = 0; x < 8; ++x)
          img[b * 64 + y * 8 + x] = nd(rng) + (y >= r0 && y < r0 + 4 && x >= c0 && x < c0 + 4 ? 1.0 : 0.0);
    }
    Tensor x = from_vector(img, {B, 1, 8, 8}, DType::F32), target = from_vector(lab, {B}, DType::I64);
    AdamW opt(model->parameters(), 0.9, 0.999, 1e-8, 0.0);
    double first = 0, last = 0;
    for (int step = 0; step < 40; ++step) {
      opt.zero_grad();
      Tensor loss = cross_entropy((*model)(x), target);
      loss.backward();
      opt.step(3e-3);
      const double l = loss.item();
      REQUIRE(std::isfinite(l));
      if (step == 0) first = l;
      last = l;
    }
    INFO(kind, ": loss ", first, " -> ", last);
    CHECK(last < 0.5 * first);
  }
}

TEST_CASE("model.attention: linear attention refuses a relative position encoding, naming both keys") {
  try {
    build_model(Config::parse("model:\n  type: simple_vit\n  attention: linear_elu\n  rel_pos: alibi\n", "x.yaml"));
    FAIL("no error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("attention") != std::string::npos);
    CHECK(msg.find("rel_pos") != std::string::npos);
  }
}
