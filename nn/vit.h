// Vision transformers built from one configurable class: SimpleViT and ViT are
// two sets of defaults, not two forks.
//   SimpleViT (Beyer et al. 2022): LN-Linear-LN patch embedding, fixed 2D sin-cos
//     positions, mean pooling, no dropout.
//   ViT (Dosovitskiy et al. 2021): conv patch embedding, cls token, learned
//     positions, dropout, cls pooling.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/peg.h"
#include "nn/posenc.h"
#include "nn/registry.h"

namespace pw {

// The options of both; the defaults here are SimpleViT's (VitOptions::vit()
// changes five of them), and they are the config defaults too: bind() declares
// the model.<key> keys from them and reads a resolved config section back.
struct VitOptions {
  // Core model keys (trainers/config_schema.cpp), read but not declared by bind().
  int64_t image_size = 28, channels = 1, num_classes = 10;
  int64_t patch_size = 4;
  int64_t dim = 192, depth = 6, heads = 3, dim_head = 64, mlp_dim = 768;
  double dropout = 0, emb_dropout = 0, attn_dropout = 0, drop_path = 0;
  bool qkv_bias = false;
  std::string pool = "mean";  // mean | cls
  // linear (rearrange-LN-Linear-LN) | conv (one strided conv) | conv_stem (Xiao et al. 2021,
  // "Early convolutions help transformers see better": log2(P) 3x3 stride-2 convs with
  // BatchNorm + ReLU, then a 1x1 conv to dim; P must be a power of two)
  std::string patch_embed = "linear";
  std::string pos_embed = "sincos2d";  // sincos2d | learned | sinusoidal | peg | none
  // pos_embed peg (CPVT, nn/peg.h): a PEG after each of these blocks (0-based); the paper's
  // default is after the first block.
  std::vector<int64_t> peg_after = {0};
  std::string init = "torch";          // Linear init: torch | timm | xavier (see init_linears)
  RelPosOptions rel_pos;               // model.rel_pos and its keys (nn/posenc.h); none by default
  std::string attention = "softmax";   // softmax | linear_taylor | linear_elu (Attention::kind)
  static VitOptions simple_vit();
  static VitOptions vit();
  // The model's own keys, one list for both directions (io/keys.h KeyBinder).
  void bind(KeyBinder& b);
  // A resolved model: section (core keys and these) as options.
  static VitOptions from(const Options& model);
};
// The checks over several keys (patch_size divides image_size; conv_stem
// needs a power-of-two patch), reported against the config's lines.
void check_vit_options(const Options& model);

// img: (B,C,H,W) -> tokens (B, N, D), N = (H/P)*(W/P)
struct PatchEmbed : Module {
  std::string kind;
  int64_t patch;
  std::shared_ptr<LayerNorm> norm_in, norm_out;
  std::shared_ptr<Linear> proj_linear;
  std::shared_ptr<Conv2d> proj_conv;
  std::vector<std::shared_ptr<Conv2d>> stem_convs;  // conv_stem: the 3x3 stride-2 convs
  std::vector<std::shared_ptr<BatchNorm>> stem_norms;
  PatchEmbed(const std::string& kind, int64_t channels, int64_t patch, int64_t dim);
  Tensor forward(const Tensor& img) override;
  const char* type_name() const override { return "PatchEmbed"; }
};

struct VisionTransformer : Module {
  VitOptions opt;
  std::shared_ptr<PatchEmbed> patch_embed;
  Tensor cls_token;   // (1,1,D) when pool == cls
  Tensor pos_embed;   // learned: parameter (1, N(+1), D); fixed: a constant (N, D), moved by to(), not in state_dict
  std::vector<std::shared_ptr<Block>> blocks;
  std::vector<std::shared_ptr<PEG>> pegs;  // pos_embed peg: pegs[i] runs after blocks[i] (null: none)
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;
  explicit VisionTransformer(const VitOptions& o);
  Tensor forward(const Tensor& img) override;  // (B,C,H,W) -> logits (B, num_classes)
  const char* type_name() const override { return "VisionTransformer"; }
};

}  // namespace pw
