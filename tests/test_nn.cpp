// Module behaviour (nn/module.h, nn/layers.h, nn/vit.h): PyTorch-style dotted
// names, weight-decay flags, strict load_state_dict and its errors, train/eval
// propagation, parameter counts of the shipped configs, the fixed position
// tables against PyTorch, initialiser statistics, and the attention-logit hook.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "nn/layers.h"
#include "nn/vit.h"
#include "tests/gradcheck.h"
#include "trainers/config.h"
#include "io/safetensors.h"
#include "trainers/trainer.h"

using namespace pw;
using pw::test::check_close;

namespace {

// depth 2, dim 16, 2 heads of 6 (NH*HD = 12 != D), 8x8 images in 4x4 patches.
VitOptions tiny(VitOptions o) {
  o.image_size = 8;
  o.patch_size = 4;
  o.channels = 3;
  o.num_classes = 5;
  o.dim = 16;
  o.depth = 2;
  o.heads = 2;
  o.dim_head = 6;
  o.mlp_dim = 24;
  return o;
}

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> n;
  for (auto& [name, t] : m.state_dict()) n.push_back(name);
  return n;
}

std::map<std::string, Tensor> state_map(const Module& m) {
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : m.state_dict()) sd[n] = t.detach().clone();
  return sd;
}

// The message `f` throws as pw::Error, or "" if it does not throw.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void visit(const Module& m, const std::function<void(const Module&)>& f) {
  f(m);
  for (auto& [n, c] : m.children()) visit(*c, f);
}

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
  size_t n = 0;
};
Stats stats_of(const Tensor& t) {
  Stats s;
  auto v = t.to_vector();
  s.n = v.size();
  for (double x : v) s.mean += x, s.max_abs = std::max(s.max_abs, std::abs(x));
  s.mean /= s.n;
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / s.n);
  return s;
}

SafetensorsFile posemb_fixture() {
  return load_safetensors(std::string(PW_SOURCE_DIR) + "/tests/fixtures/posemb.safetensors");
}

}  // namespace

TEST_CASE("state_dict names: SimpleViT") {
  VisionTransformer m(tiny(VitOptions::simple_vit()));
  std::vector<std::string> want = {
      "patch_embed.norm_in.weight", "patch_embed.norm_in.bias", "patch_embed.proj.weight", "patch_embed.proj.bias",
      "patch_embed.norm_out.weight", "patch_embed.norm_out.bias"};
  for (int b = 0; b < 2; ++b)
    for (const char* s : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight", "attn.proj.bias",
                          "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                          "mlp.fc2.bias"})
      want.push_back("blocks." + std::to_string(b) + "." + s);
  for (const char* s : {"norm.weight", "norm.bias", "head.weight", "head.bias"}) want.push_back(s);
  CHECK(names_of(m) == want);  // no qkv bias; the sin-cos table is a constant, not state
  CHECK(m.named_buffers().empty());

  auto sd = state_map(m);
  CHECK(sd.at("patch_embed.norm_in.weight").shape() == Shape{48});  // 4*4*3
  CHECK(sd.at("patch_embed.proj.weight").shape() == Shape{16, 48});
  CHECK(sd.at("blocks.1.attn.qkv.weight").shape() == Shape{36, 16});  // 3 * NH*HD
  CHECK(sd.at("blocks.1.attn.proj.weight").shape() == Shape{16, 12});
  CHECK(sd.at("blocks.0.mlp.fc1.weight").shape() == Shape{24, 16});
  CHECK(sd.at("head.weight").shape() == Shape{5, 16});
}

TEST_CASE("state_dict names: ViT") {
  VisionTransformer m(tiny(VitOptions::vit()));
  std::vector<std::string> want = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"};
  for (int b = 0; b < 2; ++b)
    for (const char* s : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                          "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                          "mlp.fc2.weight", "mlp.fc2.bias"})
      want.push_back("blocks." + std::to_string(b) + "." + s);
  for (const char* s : {"norm.weight", "norm.bias", "head.weight", "head.bias"}) want.push_back(s);
  CHECK(names_of(m) == want);
  auto sd = state_map(m);
  CHECK(sd.at("cls_token").shape() == Shape{1, 1, 16});
  CHECK(sd.at("pos_embed").shape() == Shape{1, 5, 16});  // 4 patches + cls
  CHECK(sd.at("patch_embed.proj.weight").shape() == Shape{16, 3, 4, 4});
  CHECK(sd.at("blocks.0.attn.qkv.bias").shape() == Shape{36});
}

TEST_CASE("BatchNorm running statistics are named buffers after the parameters") {
  struct Net : Module {
    std::shared_ptr<Conv2d> conv;
    std::shared_ptr<BatchNorm> bn;
    Net() {
      conv = add_module("conv", std::make_shared<Conv2d>(3, 4, 3));
      bn = add_module("bn", std::make_shared<BatchNorm>(4));
    }
  } net;
  CHECK(names_of(net) == std::vector<std::string>{"conv.weight", "conv.bias", "bn.weight", "bn.bias",
                                                  "bn.running_mean", "bn.running_var"});
  CHECK(net.parameters().size() == 4);
  CHECK(net.num_parameters() == 4 * 3 * 9 + 4 + 4 + 4);  // buffers are not parameters
}

TEST_CASE("weight decay only on the weights of Linear and Conv2d") {
  for (VitOptions o : {tiny(VitOptions::simple_vit()), tiny(VitOptions::vit())}) {
    CAPTURE(o.pool);
    VisionTransformer m(o);
    for (const Param& p : m.parameters()) {
      CAPTURE(p.name);
      bool norm = p.name.find("norm") != std::string::npos;
      bool bias = p.name.size() >= 4 && p.name.compare(p.name.size() - 4, 4, "bias") == 0;
      bool token = p.name == "pos_embed" || p.name == "cls_token";
      CHECK(p.decay == !(norm || bias || token));
      CHECK(p.tensor.requires_grad());
      CHECK(p.tensor.is_leaf());
    }
  }
}

TEST_CASE("load_state_dict copies values and converts dtype") {
  VisionTransformer a(tiny(VitOptions::vit())), b(tiny(VitOptions::vit()));
  auto sd = state_map(a);
  std::map<std::string, Tensor> as64;
  for (auto& [n, t] : sd) as64[n] = t.to(DType::F64);
  b.load_state_dict(as64);
  for (auto& [n, t] : b.state_dict()) {
    const std::string& name = n;  // clang < 16 can't capture bindings
    CAPTURE(name);
    CHECK(t.dtype() == DType::F32);
    CHECK(t.to_vector() == sd.at(n).to_vector());
  }
  // A copy, not a share: changing the source afterwards leaves the model alone.
  as64.at("head.bias").data<double>()[0] += 1;
  CHECK(b.head->bias.to_vector() == sd.at("head.bias").to_vector());
}

TEST_CASE("load_state_dict errors name the key and the shapes") {
  VisionTransformer m(tiny(VitOptions::simple_vit()));

  auto missing = state_map(m);
  missing.erase("blocks.1.mlp.fc2.bias");
  std::string e = error_of([&] { m.load_state_dict(missing); });
  CHECK(e.find("missing key 'blocks.1.mlp.fc2.bias'") != std::string::npos);
  CHECK(e.find("f32[16]") != std::string::npos);

  auto extra = state_map(m);
  extra["blocks.0.attn.qkv.bias"] = zeros({36});
  e = error_of([&] { m.load_state_dict(extra); });
  CHECK(e.find("unexpected key 'blocks.0.attn.qkv.bias'") != std::string::npos);
  CHECK(e.find("f32[36]") != std::string::npos);

  auto wrong = state_map(m);
  wrong["head.weight"] = zeros({10, 16});
  e = error_of([&] { m.load_state_dict(wrong); });
  CHECK(e.find("'head.weight'") != std::string::npos);
  CHECK(e.find("[10,16] in the checkpoint") != std::string::npos);
  CHECK(e.find("[5,16] in the model") != std::string::npos);

  // Non-strict skips missing and unexpected names but, like PyTorch, still
  // refuses a shape mismatch.
  Tensor before = m.head->bias.clone();
  auto partial = extra;
  partial.erase("blocks.1.mlp.fc2.bias");
  partial["head.bias"] = full({5}, 0.25);
  CHECK(error_of([&] { m.load_state_dict(partial, /*strict=*/false); }) == "");
  CHECK(m.head->bias.to_vector() == std::vector<double>(5, 0.25));
  CHECK(error_of([&] { m.load_state_dict(wrong, /*strict=*/false); }).find("'head.weight'") != std::string::npos);
}

TEST_CASE("train() and eval() reach every submodule and switch dropout") {
  VitOptions o = tiny(VitOptions::vit());
  o.dropout = o.emb_dropout = o.attn_dropout = 0.3;
  o.drop_path = 0.2;
  VisionTransformer m(o);
  int n = 0;
  visit(m, [&](const Module& c) {
    CHECK(c.training());
    ++n;
  });
  CHECK(n > 20);
  m.eval();
  visit(m, [&](const Module& c) { CHECK(!c.training()); });

  Tensor x = normal({2, 3, 8, 8}, 0, 1);
  auto e1 = m(x).to_vector(), e2 = m(x).to_vector();
  CHECK(e1 == e2);  // eval is deterministic
  m.blocks[1]->train();  // one subtree only
  CHECK(m.blocks[1]->attn->qkv->training());
  CHECK(!m.blocks[0]->attn->qkv->training());
  CHECK(!m.training());
  m.train();
  visit(m, [&](const Module& c) { CHECK(c.training()); });
  CHECK(m(x).to_vector() != e1);  // dropout draws fresh masks in training
}

TEST_CASE("num_parameters of the shipped Fashion-MNIST configs (counted in PyTorch by models.py)") {
  std::string dir = std::string(PW_SOURCE_DIR) + "/configs/fashion_mnist/";
  CHECK(build_model(Config::load(dir + "simple_vit.yaml"))->num_parameters() == 223530);
  CHECK(build_model(Config::load(dir + "vit.yaml"))->num_parameters() == 456394);
}

TEST_CASE("build_model is reproducible from train.seed") {
  Config c = Config::parse("model:\n  type: vit\n  depth: 1\n  dim: 16\n  heads: 2\n  mlp_dim: 8\n", "x.yaml");
  auto a = state_map(*build_model(c)), b = state_map(*build_model(c));
  for (auto& [n, t] : a) CHECK(t.to_vector() == b.at(n).to_vector());
  c.set("train.seed=7");
  CHECK(state_map(*build_model(c)).at("head.weight").to_vector() != a.at("head.weight").to_vector());
}

TEST_CASE("posemb_sincos_2d matches lucidrains' posemb_sincos_2d (float32)") {
  SafetensorsFile f = posemb_fixture();
  for (auto [h, w, d] : std::vector<std::array<int64_t, 3>>{{7, 7, 64}, {4, 4, 16}, {2, 3, 8}, {5, 2, 12}}) {
    std::string key = "sincos2d." + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(d);
    CAPTURE(key);
    Tensor ref = f.get(key);
    Tensor got = posemb_sincos_2d(h, w, d);
    REQUIRE(got.shape() == ref.shape());
    CHECK(got.dtype() == DType::F32);
    // NOTE: not bit-exact (measured: up to 1.8e-7, a fifth of the 7x7x64 entries).
    // torch rounds omega, 1/temperature^omega and x*omega to float32 in turn and
    // takes Sleef's float sin; we compute in double and round once. Emulating the
    // float32 steps still leaves 168 of 3136 entries a ulp apart (pow and sin).
    check_close(got.to_vector(), ref.to_vector(), 3e-7, 0, "posemb_sincos_2d");
  }
  CHECK_THROWS_WITH_AS(posemb_sincos_2d(2, 2, 10), doctest::Contains("posemb_sincos_2d"), Error);
}

TEST_CASE("posemb_sinusoidal_1d matches the Transformer's table") {
  SafetensorsFile f = posemb_fixture();
  for (auto [n, d] : std::vector<std::array<int64_t, 2>>{{10, 8}, {50, 16}, {3, 6}}) {
    std::string key = "sinusoidal1d." + std::to_string(n) + "x" + std::to_string(d);
    CAPTURE(key);
    Tensor ref = f.get(key);  // float64
    Tensor got = posemb_sinusoidal_1d(n, d);
    REQUIRE(got.shape() == ref.shape());
    // Bit-exact: our float32 table is torch's float64 one rounded to float32.
    CHECK(got.to_vector() == ref.to(DType::F32).to_vector());
  }
  CHECK_THROWS_WITH_AS(posemb_sinusoidal_1d(4, 7), doctest::Contains("posemb_sinusoidal_1d"), Error);
}

TEST_CASE("initialisers: timm's trunc_normal(.02), PyTorch's kaiming_uniform(a=sqrt 5), norms and biases") {
  manual_seed(11);
  Linear lin(384, 256);
  Stats s = stats_of(lin.weight);
  CHECK(std::abs(s.mean) < 4 * 0.02 / std::sqrt((double)s.n));
  CHECK(s.std == doctest::Approx(0.02).epsilon(0.02));
  // The cut is at +-2 absolute (timm), not +-2 std: ~4.55% of the weights lie beyond 2 std.
  double beyond = 0;
  for (double v : lin.weight.to_vector()) beyond += std::abs(v) > 0.04;
  CHECK(beyond / s.n == doctest::Approx(0.0455).epsilon(0.1));
  CHECK(lin.bias.to_vector() == std::vector<double>(256, 0.0));

  // With std 1 the cut at +-2 shows: the truncated normal's std is 0.8796.
  Tensor t = zeros({200, 300});
  init_trunc_normal(t, 1.0);
  s = stats_of(t);
  CHECK(s.max_abs <= 2.0);
  CHECK(s.max_abs > 1.99);
  CHECK(s.std == doctest::Approx(0.8796).epsilon(0.01));

  Conv2d conv(32, 64, 3);
  const double fan_in = 32 * 9, bound = 1 / std::sqrt(fan_in);  // gain sqrt(2/(1+5)) * sqrt(3/fan_in)
  s = stats_of(conv.weight);
  CHECK(s.max_abs <= bound);
  CHECK(s.max_abs > 0.99 * bound);
  CHECK(s.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.03));
  CHECK(std::abs(s.mean) < 4 * bound / std::sqrt(3.0 * s.n));
  Stats sb = stats_of(conv.bias);
  CHECK(sb.max_abs <= bound);
  CHECK(sb.std > 0.3 * bound);

  LayerNorm ln(7);
  CHECK(ln.weight.to_vector() == std::vector<double>(7, 1.0));
  CHECK(ln.bias.to_vector() == std::vector<double>(7, 0.0));

  VisionTransformer vit(tiny(VitOptions::vit()));
  Stats sc = stats_of(vit.pos_embed);
  CHECK(sc.std == doctest::Approx(0.02).epsilon(0.25));  // 80 values
  CHECK(sc.std > 0);
  CHECK(stats_of(vit.cls_token).max_abs > 0);
}

namespace {
// A learned additive bias on the attention logits.   bias: (NH,N,N)
struct ConstantBias : AttentionTerm {
  Tensor bias;
  explicit ConstantBias(Tensor b) { bias = add_param("bias", b); }
  Tensor logits_term(const Tensor& q, const Tensor& k) override { return bias; }
};

// Attention with the logits term added by hand, op for op as nn/layers.cpp.
Tensor attention_by_hand(const Attention& a, const Tensor& x, const Tensor& bias) {
  int64_t B = x.size(0), N = x.size(1), NH = a.heads, HD = a.dim_head;
  Tensor qkv = permute(linear(x, a.qkv->weight, a.qkv->bias).reshape({B, N, 3, NH, HD}), {2, 0, 3, 1, 4});
  std::vector<Tensor> p = chunk(qkv, 3, 0);
  Tensor q = p[0].reshape({B, NH, N, HD}), k = p[1].reshape({B, NH, N, HD}), v = p[2].reshape({B, NH, N, HD});
  Tensor logits = matmul(q * (1.0 / std::sqrt((double)HD)), transpose(k, -2, -1));
  if (bias.defined()) logits = logits + bias;
  Tensor out = permute(matmul(softmax(logits, -1), v), {0, 2, 1, 3}).reshape({B, N, NH * HD});
  return linear(out, a.proj->weight, a.proj->bias);
}
}  // namespace

TEST_CASE("Attention: an AttentionTerm adds to the logits exactly") {
  const int64_t B = 2, N = 5, D = 12, NH = 3, HD = 4;
  Attention attn(D, NH, HD, /*qkv_bias=*/true);
  init_uniform(attn.qkv->bias, -0.5, 0.5);
  init_uniform(attn.proj->bias, -0.5, 0.5);
  init_uniform(attn.qkv->weight, -0.5, 0.5);
  Tensor x = normal({B, N, D}, 0, 1);
  Tensor plain = attn(x);
  // Without a term, Attention runs the fused attention_qkv kernel: the same math,
  // rounded differently (scale folded into the GEMM, float row sums).
  check_close(plain.to_vector(), attention_by_hand(attn, x, Tensor()).to_vector(), 1e-5, 1e-5, "fused attention");

  auto term = std::make_shared<ConstantBias>(normal({NH, N, N}, 0, 2));
  attn.set_term(term);
  Tensor y = attn(x);
  Tensor by_hand = attention_by_hand(attn, x, term->bias);
  CHECK(y.to_vector() == by_hand.to_vector());
  CHECK(y.to_vector() != plain.to_vector());

  // The term's parameters get the gradient of the logits they were added to.
  Tensor u = normal({B, N, D}, 0, 1);
  y.backward(u);
  Tensor g = term->bias.grad().clone();
  term->bias.zero_grad();
  by_hand.backward(u);
  CHECK(g.to_vector() == term->bias.grad().to_vector());

  // A term constant across the keys of a row leaves attention unchanged (softmax
  // is shift-invariant): rows of the bias may differ, columns may not.
  Attention attn2(D, NH, HD, /*qkv_bias=*/true);
  attn2.load_state_dict(std::map<std::string, Tensor>{{"qkv.weight", attn.qkv->weight}, {"qkv.bias", attn.qkv->bias},
                                                      {"proj.weight", attn.proj->weight}, {"proj.bias", attn.proj->bias}});
  attn2.set_term(std::make_shared<ConstantBias>(expand(normal({NH, N, 1}, 0, 3), {NH, N, N}).clone()));
  check_close(attn2(x).to_vector(), plain.to_vector(), 1e-5, 1e-5, "row-constant term");
}

// Attention::set_term registers the hook as a child: its parameters train and
// are saved with the model.
TEST_CASE("Attention: a term's parameters belong to the model") {
  Attention attn(8, 2, 4);
  attn.set_term(std::make_shared<ConstantBias>(normal({2, 3, 3}, 0, 1)));
  CHECK_THROWS_WITH_AS(attn.set_term(std::make_shared<ConstantBias>(normal({2, 3, 3}, 0, 1))),
                       doctest::Contains("already has"), pw::Error);
  auto names = names_of(attn);
  CHECK(std::find(names.begin(), names.end(), "term.bias") != names.end());
}

TEST_CASE("ModuleTrace records nested calls with output shapes") {
  VisionTransformer m(tiny(VitOptions::simple_vit()));
  ModuleTrace tr;
  m(normal({2, 3, 8, 8}, 0, 1));
  REQUIRE(!tr.entries.empty());
  CHECK(tr.entries[0].module == &m);
  CHECK(tr.entries[0].depth == 0);
  CHECK(tr.entries[0].out == Shape{2, 5});
  CHECK(tr.entries[1].module == m.patch_embed.get());
  CHECK(tr.entries[1].out == Shape{2, 4, 16});
  CHECK(tr.entries[0].flops >= tr.entries[1].flops);
  CHECK(tr.entries[0].flops > 0);
}
