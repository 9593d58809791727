// LocalViT (Li et al. 2021, arXiv 2104.05707): DeiT whose feed-forward network runs
// on the token grid as convolutions, adding locality:
//   1x1 conv -> BN -> Hardswish -> depthwise 3x3 conv -> BN -> Hardswish [-> SE] -> 1x1 conv -> BN
// with its own residual (x + FF(x)); the class token bypasses it. Following the official
// code (ofsoundof/LocalViT, models/localvit.py, LocalityFeedForward and Block): the
// convs have no bias, the block has no LayerNorm before the feed-forward and no drop
// path on it, and localvit_tiny_mlp4_act3_r192 ("act3" = Hardswish + SE) has an SE
// block with reduction 192 (hidden 768 -> 4 -> 768, ReLU, hard sigmoid). Parameter
// names follow the official ones (blocks.<i>.conv.conv.<k>, as its nn.Sequential).
//
// Shapes: B batch, N = h*w patch tokens, D width, F = D * mlp_ratio hidden channels.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/registry.h"

namespace pw {

struct LocalVitOptions {
  // Core model keys (trainers/config_schema.cpp), read but not declared by bind().
  int64_t image_size = 224, channels = 3, num_classes = 1000;
  int64_t patch_size = 16, dim = 192, depth = 12, heads = 4;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int64_t se_reduction = 192;  // 0: no SE block (act2, "hs")
  double dropout = 0, drop_path = 0.1;
  void bind(KeyBinder& b);
  static LocalVitOptions from(const Options& model);
};
void check_localvit_options(const Options& model);

// Squeeze-and-excitation: x * hsigmoid(fc2(relu(fc1(mean_hw(x))))).   x: (B,F,h,w)
struct SqueezeExcite : Module {
  std::shared_ptr<Linear> fc1, fc2;  // fc.0, fc.2
  SqueezeExcite(int64_t channels, int64_t reduction);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "SqueezeExcite"; }
};

// x + FF(x) on the grid.   x: (B,D,h,w) -> (B,D,h,w)
struct LocalityFeedForward : Module {
  std::shared_ptr<Conv2d> pw_in, depthwise, pw_out;  // conv.0, conv.3, conv.7 (conv.6 without SE)
  std::shared_ptr<BatchNorm> bn1, bn2, bn3;              // conv.1, conv.4, conv.8 (conv.7)
  std::shared_ptr<SqueezeExcite> se;                     // conv.6, or none
  LocalityFeedForward(int64_t dim, int64_t hidden, int64_t se_reduction);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "LocalityFeedForward"; }
};

// x + DropPath(Attn(LN(x))); then the patch tokens through LocalityFeedForward.   x: (B,1+N,D)
struct LocalVitBlock : Module {
  std::shared_ptr<LayerNorm> norm1;
  std::shared_ptr<Attention> attn;
  std::shared_ptr<DropPath> drop_path;
  std::shared_ptr<LocalityFeedForward> conv;
  int64_t side;
  LocalVitBlock(const LocalVitOptions& o, int64_t side, double drop_path);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "LocalVitBlock"; }
};

struct LocalVisionTransformer : Module {
  LocalVitOptions opt;
  std::shared_ptr<Conv2d> patch_proj;  // patch_embed.proj
  Tensor cls_token, pos_embed;         // (1,1,D), (1,1+N,D)
  std::vector<std::shared_ptr<LocalVitBlock>> blocks;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;
  explicit LocalVisionTransformer(const LocalVitOptions& o);
  Tensor forward(const Tensor& img) override;  // (B,C,H,W) -> logits (B, num_classes)
  const char* type_name() const override { return "LocalViT"; }
};

}  // namespace pw
