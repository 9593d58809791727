// Swin, CvT and LocalViT (nn/swin.h, nn/cvt.h, nn/localvit.h): the exact parameter
// counts of the ImageNet configs against the official PyTorch code, forward shapes
// per stage, Swin's shifted-window mask against the reference's region construction
// and the locality of window attention, and a few dozen training steps that lower
// the loss. The logits against timm's Swin-T are checked by scripts/check_timm_swin.py
// (by hand), from the file the skipped case at the end writes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/ops.h"
#include "nn/cvt.h"
#include "nn/localvit.h"
#include "nn/swin.h"
#include "trainers/config.h"
#include "trainers/optim.h"
#include "trainers/trainer.h"

using namespace pw;

namespace {

std::string cfg_path(const std::string& rel) { return std::string(PW_SOURCE_DIR) + "/configs/" + rel; }

// A few dozen AdamW steps on one fixed batch of random images: the loss must fall.
void check_training_lowers_loss(Module& model, int64_t C, int64_t S, int64_t classes) {
  manual_seed(3);
  const int64_t B = 8;
  Tensor x = normal({B, C, S, S}, 0.0, 1.0);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < B; ++i) labels.push_back(i % classes);
  Tensor y = from_indices(labels, {B});
  model.train();
  AdamW opt(model.parameters(), 0.9, 0.999, 1e-8, 0.0);
  std::vector<double> losses;
  for (int step = 0; step < 24; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model(x), y);
    loss.backward();
    opt.step(1e-3);
    losses.push_back(loss.item());
    REQUIRE(std::isfinite(losses.back()));
  }
  const double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[21] + losses[22] + losses[23]) / 3;
  CAPTURE(first);
  CAPTURE(last);
  CHECK(last < 0.5 * first);
}

}  // namespace

TEST_CASE("parameter counts of the ImageNet configs equal the official PyTorch models") {
  // Official code at 224x224, 1000 classes, head included; BatchNorm running statistics
  // and fixed index buffers are not parameters. Swin-T: timm swin_tiny_patch4_window7_224
  // (= microsoft/Swin-Transformer); CvT-13: microsoft/CvT cls_cvt.py with cvt-13-224x224.yaml;
  // LocalViT-T: ofsoundof/LocalViT localvit_tiny_mlp4_act3_r192.
  CHECK(build_model(Config::load(cfg_path("imagenet/cvt_13.yaml")))->num_parameters() == 19997480);
  CHECK(build_model(Config::load(cfg_path("imagenet/localvit_t.yaml")))->num_parameters() == 5908696);
  auto m = build_model(Config::load(cfg_path("imagenet/swin_t.yaml")));
  CHECK(m->num_parameters() == 28288354);
  // and timm's parameter names
  std::set<std::string> names;
  for (auto& [n, t] : m->state_dict()) names.insert(n);
  for (const char* n : {"patch_embed.proj.weight", "patch_embed.norm.bias",
                        "layers.0.blocks.1.attn.relative_position_bias_table", "layers.0.blocks.0.attn.qkv.bias",
                        "layers.1.downsample.norm.weight", "layers.1.downsample.reduction.weight",
                        "layers.3.blocks.1.mlp.fc2.weight", "norm.weight", "head.fc.weight", "head.fc.bias"})
    CHECK_MESSAGE(names.count(n), n);
  CHECK(!names.count("layers.0.downsample.norm.weight"));  // the first stage does not merge
  CHECK(!names.count("layers.1.downsample.reduction.bias"));
  for (auto& n : names) CHECK_MESSAGE(n.find("index") == std::string::npos, n);  // fixed buffers aren't state
}

TEST_CASE("Swin: forward shapes per stage (Fashion-MNIST config: padding and an odd map)") {
  auto m = std::dynamic_pointer_cast<SwinTransformer>(build_model(Config::load(cfg_path("fashion_mnist/swin.yaml"))));
  REQUIRE(m);
  m->eval();
  Tensor x = m->embed(normal({2, 1, 28, 28}, 0, 1));
  CHECK(x.shape() == Shape{2, 14, 14, 48});
  const std::vector<Shape> want = {{2, 14, 14, 48}, {2, 7, 7, 96}, {2, 4, 4, 192}};
  for (size_t i = 0; i < m->layers.size(); ++i) {
    x = (*m->layers[i])(x);
    CHECK(x.shape() == want[i]);
  }
  // window 4: 14 and 7 are padded to 16 and 8; stage 3's 4x4 map is one unshifted window
  CHECK(m->layers[0]->blocks[1]->Hp == 16);
  CHECK(m->layers[0]->blocks[1]->shift == 2);
  CHECK(m->layers[1]->blocks[1]->Hp == 8);
  CHECK(m->layers[2]->blocks[1]->shift == 0);
  CHECK(m->forward(normal({2, 1, 28, 28}, 0, 1)).shape() == Shape{2, 10});
}

TEST_CASE("Swin: the shifted-window mask blocks exactly the reference's pairs") {
  // Worked out by hand on a 4x4 map, window 2, shift 1: the rolled map's rows and columns
  // fall into regions {0,1} -> 0, {2} -> 1, {3} -> 2 (Hp-M = 2, Hp-s = 3). Windows in raster
  // order, tokens of a window in raster order.
  const double X = -100;
  std::vector<double> m = swin_shift_mask(4, 4, 2, 1);
  REQUIRE(m.size() == 4u * 16);
  const std::vector<double> w0(16, 0.0);  // window (0,0): one region, nothing masked
  // window (0,1): columns 2 | 3 split: tokens {0,2} and {1,3}
  const std::vector<double> w1 = {0, X, 0, X, X, 0, X, 0, 0, X, 0, X, X, 0, X, 0};
  // window (1,0): rows 2 | 3 split: tokens {0,1} and {2,3}
  const std::vector<double> w2 = {0, 0, X, X, 0, 0, X, X, X, X, 0, 0, X, X, 0, 0};
  // window (1,1): all four tokens in different regions
  const std::vector<double> w3 = {0, X, X, X, X, 0, X, X, X, X, 0, X, X, X, X, 0};
  CHECK(std::vector<double>(m.begin(), m.begin() + 16) == w0);
  CHECK(std::vector<double>(m.begin() + 16, m.begin() + 32) == w1);
  CHECK(std::vector<double>(m.begin() + 32, m.begin() + 48) == w2);
  CHECK(std::vector<double>(m.begin() + 48, m.end()) == w3);

  // Larger maps: a pair is allowed iff both tokens come from the same side of the cyclic
  // seam in each axis (the rolled-in last s rows/columns vs the rest), which is what the
  // reference's three regions per axis amount to inside one window.
  for (const auto& g : std::vector<std::array<int64_t, 4>>{{8, 8, 4, 2}, {12, 8, 4, 2}, {14, 7, 7, 3}}) {
    const int64_t Hp = g[0], Wp = g[1], M = g[2], s = g[3];  // not a binding: clang 14 can't capture one
    CAPTURE(Hp);
    CAPTURE(Wp);
    std::vector<double> mk = swin_shift_mask(Hp, Wp, M, s);
    const int64_t nw = Wp / M, N = M * M;
    int64_t blocked = 0;
    for (int64_t wi = 0; wi < Hp / M; ++wi)
      for (int64_t wj = 0; wj < nw; ++wj)
        for (int64_t a = 0; a < N; ++a)
          for (int64_t b = 0; b < N; ++b) {
            const int64_t ra = wi * M + a / M, ca = wj * M + a % M, rb = wi * M + b / M, cb = wj * M + b % M;
            const bool same = (ra >= Hp - s) == (rb >= Hp - s) && (ca >= Wp - s) == (cb >= Wp - s);
            const double got = mk[((wi * nw + wj) * N + a) * N + b];
            CHECK(got == (same ? 0.0 : -100.0));
            blocked += !same;
          }
    CHECK(blocked > 0);
  }
}

namespace {
// Which outputs of a Swin block change when input token (r, c) changes: compares the
// block's output on x and on x with that token perturbed.   -> (H*W) flags
std::vector<bool> changed_tokens(SwinBlock& blk, const Tensor& x, int64_t r, int64_t c) {
  const int64_t H = x.size(1), W = x.size(2), C = x.size(3);
  std::vector<double> v = x.to_vector();
  // not constant over the channels: LayerNorm would remove a constant shift
  for (int64_t k = 0; k < C; ++k) v[(r * W + c) * C + k] += 0.5 * (double)(k % 3) - 0.3 + 0.05 * (double)k;
  std::vector<double> y0 = blk(x).to_vector(), y1 = blk(from_vector(v, x.shape())).to_vector();
  std::vector<bool> out(H * W, false);
  for (int64_t i = 0; i < H * W; ++i)
    for (int64_t k = 0; k < C; ++k)
      if (y0[i * C + k] != y1[i * C + k]) out[i] = true;
  return out;
}
}  // namespace

TEST_CASE("Swin: attention stays inside the (shifted) windows") {
  manual_seed(5);
  const int64_t C = 16, heads = 2;
  SUBCASE("regular windows: only the perturbed token's window changes") {
    SwinBlock blk(C, 8, 8, heads, 4, /*shifted=*/false, 2.0, true, 0, 0);
    blk.eval();
    Tensor x = normal({1, 8, 8, C}, 0, 1);
    std::vector<bool> ch = changed_tokens(blk, x, 5, 2);  // window (1, 0)
    for (int64_t i = 0; i < 64; ++i) CHECK_MESSAGE(ch[i] == (i / 8 >= 4 && i % 8 < 4), i);
  }
  SUBCASE("shifted windows, padded map: the token's rolled window and region only") {
    // 6x6 map, window 4: padded to 8x8, then rolled by -2. Token (r, c) sits at
    // ((r - 2) mod 8, (c - 2) mod 8) of the rolled map; it reaches the tokens of its
    // window on the same side of the cyclic seam (rows/columns >= 6 of the rolled map).
    SwinBlock blk(C, 6, 6, heads, 4, /*shifted=*/true, 2.0, true, 0, 0);
    REQUIRE(blk.shift == 2);
    REQUIRE(blk.Hp == 8);
    blk.eval();
    Tensor x = normal({2, 6, 6, C}, 0, 1);
    for (const auto& rc : std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {3, 4}, {5, 1}, {2, 5}}) {
      const int64_t r = rc.first, c = rc.second;  // not a binding: clang 14 can't capture one
      CAPTURE(r);
      CAPTURE(c);
      std::vector<bool> ch = changed_tokens(blk, x, r, c);
      auto rolled = [](int64_t p) { return (p - 2 + 8) % 8; };
      const int64_t pr = rolled(r), pc = rolled(c);
      int64_t n_changed = 0;
      for (int64_t i = 0; i < 36; ++i) {
        const int64_t qr = rolled(i / 6), qc = rolled(i % 6);
        const bool same_window = qr / 4 == pr / 4 && qc / 4 == pc / 4;
        const bool same_side = (qr >= 6) == (pr >= 6) && (qc >= 6) == (pc >= 6);
        CHECK_MESSAGE(ch[i] == (same_window && same_side), i);
        n_changed += ch[i];
      }
      CHECK(n_changed >= 1);
    }
    // batch element 1 is untouched by a perturbation of element 0
    std::vector<double> v = x.to_vector();
    v[0] += 1.0;  // one channel of token (0, 0) of image 0
    std::vector<double> y0 = blk(x).to_vector(), y1 = blk(from_vector(v, x.shape())).to_vector();
    for (int64_t i = 36 * C; i < 72 * C; ++i) CHECK(y0[i] == y1[i]);
  }
}

TEST_CASE("CvT: forward shapes per stage, class token only in the last stage") {
  auto m = std::dynamic_pointer_cast<ConvolutionalVisionTransformer>(
      build_model(Config::load(cfg_path("fashion_mnist/cvt.yaml"))));
  REQUIRE(m);
  m->eval();
  CHECK(!m->stages[0]->cls_token.defined());
  CHECK(!m->stages[1]->cls_token.defined());
  CHECK(m->stages[2]->cls_token.defined());
  Tensor x = normal({2, 1, 28, 28}, 0, 1);
  x = (*m->stages[0])(x);
  CHECK(x.shape() == Shape{2, 32, 14, 14});
  x = (*m->stages[1])(x);
  CHECK(x.shape() == Shape{2, 64, 7, 7});
  x = (*m->stages[2])(x);
  CHECK(x.shape() == Shape{2, 1 + 16, 128});
  CHECK(m->forward(normal({2, 1, 28, 28}, 0, 1)).shape() == Shape{2, 10});
  // the official names
  std::set<std::string> names;
  for (auto& [n, t] : m->state_dict()) names.insert(n);
  for (const char* n : {"stage0.patch_embed.proj.weight", "stage0.patch_embed.norm.weight",
                        "stage0.blocks.0.attn.conv_proj_q.conv.weight", "stage0.blocks.0.attn.conv_proj_k.bn.running_var",
                        "stage1.blocks.0.attn.proj_v.bias", "stage2.cls_token", "stage2.blocks.1.mlp.fc2.weight",
                        "norm.weight", "head.weight"})
    CHECK_MESSAGE(names.count(n), n);
}

TEST_CASE("CvT: keys and values come from stride-2 depthwise convs, queries keep the grid") {
  CvtOptions o;
  o.image_size = 16;
  o.channels = 3;
  o.num_classes = 4;
  o.dims = {8};
  o.depths = {1};
  o.heads = {2};
  o.patch_sizes = {3};
  o.patch_strides = {2};
  o.patch_paddings = {1};
  o.drop_path = {0.0};
  ConvolutionalVisionTransformer m(o);
  m.eval();
  CvtAttention& a = *m.stages[0]->blocks[0]->attn;
  Tensor grid = normal({2, 8, 8, 8}, 0, 1);
  CHECK((*a.conv_proj_q)(grid).shape() == Shape{2, 64, 8});
  CHECK((*a.conv_proj_k)(grid).shape() == Shape{2, 16, 8});
  CHECK(a.conv_proj_k->conv->groups == 8);  // depthwise
  CHECK(!a.conv_proj_k->conv->bias.defined());
  CHECK(m.forward(normal({2, 3, 16, 16}, 0, 1)).shape() == Shape{2, 4});
}

TEST_CASE("LocalViT: shapes, the class token bypasses the convolutional feed-forward") {
  auto m = std::dynamic_pointer_cast<LocalVisionTransformer>(
      build_model(Config::load(cfg_path("fashion_mnist/localvit.yaml"))));
  REQUIRE(m);
  m->eval();
  LocalVitBlock& blk = *m->blocks[0];
  Tensor x = normal({2, 50, 96}, 0, 1);
  Tensor y = blk(x);
  CHECK(y.shape() == Shape{2, 50, 96});
  // the class token's output is x_cls + attention only: the feed-forward leaves it alone
  Tensor a = x + (*blk.attn)((*blk.norm1)(x));
  std::vector<double> ya = narrow(a, 1, 0, 1).to_vector(), yy = narrow(y, 1, 0, 1).to_vector();
  CHECK(ya == yy);
  CHECK(m->forward(normal({2, 1, 28, 28}, 0, 1)).shape() == Shape{2, 10});
  std::set<std::string> names;
  for (auto& [n, t] : m->state_dict()) names.insert(n);
  for (const char* n : {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                        "blocks.0.conv.conv.0.weight", "blocks.0.conv.conv.1.running_mean", "blocks.0.conv.conv.3.weight",
                        "blocks.0.conv.conv.6.fc.0.weight", "blocks.0.conv.conv.6.fc.2.bias", "blocks.0.conv.conv.7.weight",
                        "blocks.0.conv.conv.8.bias", "norm.weight", "head.weight"})
    CHECK_MESSAGE(names.count(n), n);
  CHECK(!names.count("blocks.0.norm2.weight"));  // no LayerNorm before the feed-forward
}

TEST_CASE("a few dozen training steps lower the loss: Swin, CvT, LocalViT") {
  SUBCASE("swin") {
    auto m = build_model(Config::parse(
        "model:\n  type: swin\n  image_size: 16\n  channels: 2\n  num_classes: 4\n  patch_size: 2\n  embed_dim: 16\n"
        "  depths: [2, 2]\n  heads: [1, 2]\n  window_size: 4\n  drop_path: 0.1\n",
        "tiny_swin.yaml"));
    check_training_lowers_loss(*m, 2, 16, 4);
  }
  SUBCASE("cvt") {
    auto m = build_model(Config::parse(
        "model:\n  type: cvt\n  image_size: 16\n  channels: 2\n  num_classes: 4\n  dims: [16, 32]\n  depths: [1, 1]\n"
        "  heads: [1, 2]\n  patch_sizes: [3, 3]\n  patch_strides: [2, 2]\n  patch_paddings: [1, 1]\n"
        "  drop_path: [0.0, 0.1]\n",
        "tiny_cvt.yaml"));
    check_training_lowers_loss(*m, 2, 16, 4);
  }
  SUBCASE("localvit") {
    auto m = build_model(Config::parse(
        "model:\n  type: localvit\n  image_size: 16\n  channels: 2\n  num_classes: 4\n  patch_size: 4\n  dim: 32\n"
        "  depth: 2\n  heads: 2\n  se_reduction: 32\n",
        "tiny_localvit.yaml"));
    check_training_lowers_loss(*m, 2, 16, 4);
  }
}

// By hand (doctest skips it unless asked): writes Swin-T's weights, an input and
// patchwork's logits for scripts/check_timm_swin.py.
//   ./test_zoo_win --no-skip -tc='*timm*'   (PW_TIMM_SWIN_OUT: the file; default swin_t_timm_check.safetensors)
TEST_CASE("Swin-T weights and logits for scripts/check_timm_swin.py" * doctest::skip()) {
  auto m = build_model(Config::load(cfg_path("imagenet/swin_t.yaml")));
  m->eval();
  manual_seed(11);
  // every parameter moved off its init (LayerNorm weights 1, biases 0), so a swapped
  // norm or bias shows in the logits
  for (Param& p : m->parameters()) {
    Tensor v = p.tensor.detach() + normal(p.tensor.shape(), 0, 0.02);
    copy_into(p.tensor, v);
  }
  Tensor x = normal({2, 3, 224, 224}, 0, 1);
  Tensor logits = (*m)(x);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : m->state_dict()) out.emplace_back("param." + n, t);
  out.emplace_back("input", x);
  out.emplace_back("logits", logits.detach());
  const char* env = std::getenv("PW_TIMM_SWIN_OUT");
  const std::string path = env ? env : "swin_t_timm_check.safetensors";
  save_safetensors(path, out, {{"model", "swin_tiny_patch4_window7_224"}});
  MESSAGE("wrote " << path);
}
