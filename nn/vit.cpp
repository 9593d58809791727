#include "nn/vit.h"

#include <algorithm>

namespace pw {

VitOptions VitOptions::simple_vit() { return VitOptions{}; }
VitOptions VitOptions::vit() {
  VitOptions o;
  o.pool = "cls";
  o.patch_embed = "conv";
  o.pos_embed = "learned";
  o.qkv_bias = true;
  o.init = "timm";
  return o;
}

void VitOptions::bind(KeyBinder& b) {
  b("patch_size", patch_size, KeySpec::Int("patch height and width in pixels; divides image_size").ge(1));
  b("dim", dim, KeySpec::Int("token width D").ge(1));
  b("depth", depth, KeySpec::Int("number of transformer blocks").ge(1));
  b("heads", heads, KeySpec::Int("attention heads per block").ge(1));
  b("dim_head", dim_head, KeySpec::Int("width of one attention head").ge(1));
  b("mlp_dim", mlp_dim, KeySpec::Int("hidden width of each block's MLP (timm: 4 x dim)").ge(1));
  b("dropout", dropout, KeySpec::Float("dropout after attention and MLP projections").ge(0).lt(1));
  b("emb_dropout", emb_dropout, KeySpec::Float("dropout on patch embeddings plus position embeddings").ge(0).lt(1));
  b("attn_dropout", attn_dropout, KeySpec::Float("dropout on attention weights").ge(0).lt(1));
  b("drop_path", drop_path, KeySpec::Float("stochastic depth rate of the last block (linear from 0)").ge(0).lt(1));
  b("pool", pool, KeySpec::Enum({"cls", "mean"}, "class token or mean of tokens feeds the head"));
  b("qkv_bias", qkv_bias, KeySpec::Bool("bias in the query/key/value projection"));
  b("patch_embed", patch_embed,
    KeySpec::Enum({"linear", "conv", "conv_stem"},
                  "patch embedding: conv (timm, stride = patch), linear on flattened patches, or conv_stem (3x3 "
                  "stride-2 convs + BatchNorm + ReLU, then 1x1; Xiao et al. 2021)"));
  b("init", init, KeySpec::Enum({"torch", "timm", "xavier"},
                                "Linear init: torch (PyTorch default), timm (trunc-normal .02), xavier"));
  b("pos_embed", pos_embed,
    KeySpec::Enum({"sincos2d", "learned", "sinusoidal", "peg", "none"},
                  "position embedding added to the patch tokens, or peg: CPVT's conditional encoding (a depthwise "
                  "3x3 conv on the token grid as a residual, class token passed around it) after the blocks in "
                  "model.peg_after"));
  b("peg_after", peg_after,
    KeySpec::Ints("pos_embed peg: 0-based indices of the blocks a PEG follows (CPVT: [0], after the first block)")
        .ge(0));
  rel_pos.bind(b);
  b("attention", attention,
    KeySpec::Enum({"softmax", "linear_taylor", "linear_elu", "sasa"},
                  "token mixing: softmax attention, or linear attention (Katharopoulos et al. 2020) with the "
                  "feature map [1, x/|x|] (1 + q^.k^, first-order Taylor) or elu(x)+1; O(N) in the tokens, "
                  "attn_dropout unused; or sasa: softmax attention in a local model.sasa_kernel window with "
                  "SASA's factorised row/column relative embeddings, O(N k^2) (nn/posenc.h; with attn_dropout > 0 "
                  "training composes it masked, O(N^2))"));
}

VitOptions VitOptions::from(const Options& model) {
  VitOptions o;
  read_model_options(o, model);
  return o;
}

void check_vit_options(const Options& m) {
  int64_t image = m.get_int("image_size"), patch = m.get_int("patch_size");
  if (image % patch != 0)
    m.fail("patch_size", std::to_string(patch) + " does not divide model.image_size " + std::to_string(image) +
                             "; pick a divisor of it");
  if (m.get_string("patch_embed") == "conv_stem" && (patch < 2 || (patch & (patch - 1)) != 0))
    m.fail("patch_embed", "conv_stem needs a power-of-two model.patch_size (one stride-2 conv per factor 2), got " +
                              std::to_string(patch));
  if (m.get_string("rel_pos") == "rope2d" && m.get_int("dim_head") % 4 != 0)
    m.fail("rel_pos", "rope2d needs a model.dim_head divisible by 4 (dim_head/4 frequencies per axis), got " +
                          std::to_string(m.get_int("dim_head")));
  if (m.get_string("pos_embed") == "peg") {
    std::vector<int64_t> after = m.get_ints("peg_after");
    for (int64_t i : after)
      if (i >= m.get_int("depth"))
        m.fail("peg_after", "block index " + std::to_string(i) + " is not below model.depth " +
                                std::to_string(m.get_int("depth")) + "; indices are 0-based");
    std::sort(after.begin(), after.end());
    if (std::adjacent_find(after.begin(), after.end()) != after.end())
      m.fail("peg_after", "lists a block twice; one PEG per block");
  }
  if (m.get_string("rel_pos") == "irpe" && m.get_string("irpe_mode") == "bias" && m.get_string("irpe_on") != "k")
    m.fail("irpe_on", m.get_string("irpe_on") + " needs model.irpe_mode: contextual (bias mode is one scalar per "
                          "bucket on the logits); use irpe_on: k or irpe_mode: contextual");
  if (m.get_string("attention") == "sasa" && m.get_string("rel_pos") != "none")
    m.fail("attention", "sasa brings its own relative embeddings; it does not combine with model.rel_pos " +
                            m.get_string("rel_pos") + " (set rel_pos: none)");
  if (m.get_string("attention") == "sasa" && (m.get_int("sasa_kernel") % 2 == 0 || m.get_int("dim_head") % 2 != 0))
    m.fail("sasa_kernel", "sasa needs an odd model.sasa_kernel (got " + std::to_string(m.get_int("sasa_kernel")) +
                              ") and an even model.dim_head (got " + std::to_string(m.get_int("dim_head")) + ")");
  if (m.get_string("attention") != "softmax" && m.get_string("rel_pos") != "none")
    m.fail("attention", m.get_string("attention") + " has no attention logits for model.rel_pos " +
                            m.get_string("rel_pos") + " to act on; use attention: softmax or rel_pos: none");
}

PatchEmbed::PatchEmbed(const std::string& kind, int64_t channels, int64_t patch, int64_t dim)
    : kind(kind), patch(patch) {
  int64_t patch_dim = channels * patch * patch;
  if (kind == "linear") {
    norm_in = add_module("norm_in", std::make_shared<LayerNorm>(patch_dim));
    proj_linear = add_module("proj", std::make_shared<Linear>(patch_dim, dim));
    norm_out = add_module("norm_out", std::make_shared<LayerNorm>(dim));
  } else if (kind == "conv") {
    proj_conv = add_module("proj", std::make_shared<Conv2d>(channels, dim, patch, patch));
  } else {
    // Widths double up to dim: for P = 4 and dim 64, 1 -> 32 -> 64, then the 1x1 conv.
    int64_t n = 0;
    for (int64_t p = patch; p > 1; p /= 2) ++n;
    int64_t cin = channels;
    for (int64_t i = 0; i < n; ++i) {
      int64_t cout = std::max<int64_t>(dim >> (n - 1 - i), 8);
      std::string s = "stem." + std::to_string(i);
      stem_convs.push_back(add_module(s + ".conv", std::make_shared<Conv2d>(cin, cout, 3, 2, 1, 1, /*bias=*/false)));
      stem_norms.push_back(add_module(s + ".bn", std::make_shared<BatchNorm>(cout)));
      cin = cout;
    }
    proj_conv = add_module("proj", std::make_shared<Conv2d>(cin, dim, 1));
  }
}

Tensor PatchEmbed::forward(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(2) % patch == 0 && img.size(3) % patch == 0,
           "PatchEmbed: expected images (B,C,H,W) with H and W divisible by the patch size ", patch, ", got ",
           img.str());
  int64_t B = img.size(0), C = img.size(1), h = img.size(2) / patch, w = img.size(3) / patch;
  if (kind == "linear") {
    // b c (h p1) (w p2) -> b (h w) (p1 p2 c), as SimpleViT's Rearrange
    Tensor x = permute(img.reshape({B, C, h, patch, w, patch}), {0, 2, 4, 3, 5, 1})
                   .reshape({B, h * w, patch * patch * C});
    return (*norm_out)((*proj_linear)((*norm_in)(x)));
  }
  Tensor y = img;
  for (size_t i = 0; i < stem_convs.size(); ++i) y = relu((*stem_norms[i])((*stem_convs[i])(y)));
  y = (*proj_conv)(y);  // (B,D,h,w)
  return transpose(y.reshape({B, y.size(1), h * w}), 1, 2);
}

VisionTransformer::VisionTransformer(const VitOptions& o) : opt(o) {
  int64_t dh = o.dim_head > 0 ? o.dim_head : o.dim / o.heads;
  int64_t side = o.image_size / o.patch_size, n = side * side;
  patch_embed = add_module("patch_embed", std::make_shared<PatchEmbed>(o.patch_embed, o.channels, o.patch_size, o.dim));
  bool cls = o.pool == "cls";
  if (cls) {
    cls_token = add_param("cls_token", zeros({1, 1, o.dim}), /*decay=*/false);
    init_trunc_normal(cls_token, 0.02);
  }
  if (o.pos_embed == "learned") {
    pos_embed = add_param("pos_embed", zeros({1, n + (cls ? 1 : 0), o.dim}), /*decay=*/false);
    init_trunc_normal(pos_embed, 0.02);
  } else if (o.pos_embed == "sincos2d") {
    pos_embed = add_constant("pos_embed", posemb_sincos_2d(side, side, o.dim));
  } else if (o.pos_embed == "sinusoidal") {
    pos_embed = add_constant("pos_embed", posemb_sinusoidal_1d(n, o.dim));
  }
  for (int64_t i = 0; i < o.depth; ++i) {
    // stochastic depth grows linearly with depth (timm)
    double dp = o.depth > 1 ? o.drop_path * i / (o.depth - 1) : o.drop_path;
    blocks.push_back(add_module("blocks." + std::to_string(i),
                                std::make_shared<Block>(o.dim, o.heads, dh, o.mlp_dim, o.qkv_bias, o.dropout,
                                                        o.attn_dropout, dp)));
    blocks.back()->attn->kind = o.attention == "sasa" ? "softmax" : o.attention;
  }
  if (o.pos_embed == "peg") {
    pegs.resize(o.depth);
    for (int64_t i : o.peg_after) {
      PW_CHECK(i >= 0 && i < o.depth, "VisionTransformer: model.peg_after index ", i, " is not in [0, depth ", o.depth,
               ")");
      std::string name = o.peg_after.size() == 1 ? "pos_block" : "pos_block." + std::to_string(i);
      pegs[i] = add_module(name, std::make_shared<PEG>(o.dim));
    }
  }
  for (auto& b : blocks) {  // relative positions among the patches; a class token gets none (nn/posenc.h)
    if (o.attention == "sasa") b->attn->set_term(std::make_shared<SasaTerm>(side, side, dh, o.rel_pos.sasa_kernel, cls ? 1 : 0));
    else if (auto t = make_rel_pos(o.rel_pos, side, side, o.heads, dh, cls ? 1 : 0)) b->attn->set_term(t);
  }
  norm = add_module("norm", std::make_shared<LayerNorm>(o.dim));
  head = add_module("head", std::make_shared<Linear>(o.dim, o.num_classes));
  if (o.init != "timm") init_linears(*this, o.init);  // Linear's own init is timm's
}

Tensor VisionTransformer::forward(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(1) == opt.channels && img.size(2) == opt.image_size &&
               img.size(3) == opt.image_size,
           "VisionTransformer: expected images (B,", opt.channels, ",", opt.image_size, ",", opt.image_size,
           "), got ", img.str(), "; check data.resize/crop_size against model.image_size");
  Tensor x = (*patch_embed)(img);  // (B,N,D)
  int64_t B = x.size(0), D = x.size(2);
  bool learned = opt.pos_embed == "learned";
  if (pos_embed.defined() && !learned) x = x + pos_embed.to(x.dtype());  // fixed table, patches only
  if (cls_token.defined()) x = concat({expand(cls_token, {B, 1, D}), x}, 1);
  if (learned) x = x + pos_embed;
  x = dropout(x, opt.emb_dropout, training());
  const int64_t side = opt.image_size / opt.patch_size;
  for (size_t i = 0; i < blocks.size(); ++i) {
    x = (*blocks[i])(x);
    if (!pegs.empty() && pegs[i]) x = pegs[i]->run(x, side, side);  // the class token passes around it
  }
  x = (*norm)(x);
  x = opt.pool == "cls" ? narrow(x, 1, 0, 1).reshape({B, D}) : mean(x, {1});
  return (*head)(x);
}

namespace {
// SimpleViT and ViT: one class, one list of keys, two sets of defaults.
std::shared_ptr<Module> make(const Options& model) {
  return std::make_shared<VisionTransformer>(VitOptions::from(model));
}
}  // namespace

PW_REGISTER_MODEL({"simple_vit",
                   "SimpleViT (Beyer et al. 2022): mean pooling, 2D sin-cos positions, linear patches, no qkv bias",
                   declare_model_keys(VitOptions::simple_vit(), check_vit_options), make});
PW_REGISTER_MODEL({"vit", "ViT (Dosovitskiy et al. 2021): cls token, learned positions, conv patches, qkv bias, timm init",
                   declare_model_keys(VitOptions::vit(), check_vit_options), make});

}  // namespace pw
