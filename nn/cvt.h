// CvT (Wu et al. 2021, arXiv 2103.15808): three stages, each a convolutional token
// embedding (strided conv + LayerNorm) and transformer blocks whose q/k/v come from
// convolutional projections (depthwise conv + BatchNorm, then a pointwise Linear;
// keys and values with stride 2). No position embedding; a class token only in the
// last stage, where it feeds the head. Follows the official code (microsoft/CvT,
// lib/models/cls_cvt.py) and its parameter names (stage<i>.blocks.<j>.attn.conv_proj_q.conv,
// ...), including two of its choices the paper does not spell out: the attention
// scale is dim^-0.5 of the whole stage width (not of a head), and the MLP uses
// QuickGELU, x * sigmoid(1.702 x).
//
// Shapes: B batch, D stage width, H/W the stage's token grid, T tokens (H*W, +1 with
// the class token), NH heads.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/registry.h"

namespace pw {

struct CvtOptions {
  // Core model keys (trainers/config_schema.cpp), read but not declared by bind().
  int64_t image_size = 224, channels = 3, num_classes = 1000;
  std::vector<int64_t> dims = {64, 192, 384};
  std::vector<int64_t> depths = {1, 2, 10};
  std::vector<int64_t> heads = {1, 3, 6};
  std::vector<int64_t> patch_sizes = {7, 3, 3};
  std::vector<int64_t> patch_strides = {4, 2, 2};
  std::vector<int64_t> patch_paddings = {2, 1, 1};
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int64_t kernel_qkv = 3, stride_kv = 2;  // padding kernel_qkv / 2 (official: 1); the query conv has stride 1
  double dropout = 0, attn_dropout = 0;
  std::vector<double> drop_path = {0.0, 0.0, 0.1};  // per stage, the last block's rate (linear from 0)
  void bind(KeyBinder& b);
  static CvtOptions from(const Options& model);
};
void check_cvt_options(const Options& model);

// Strided conv + LayerNorm.   x: (B,C,H,W) -> tokens (B, H'*W', D), LayerNorm over D.
struct ConvEmbed : Module {
  std::shared_ptr<Conv2d> proj;
  std::shared_ptr<LayerNorm> norm;
  ConvEmbed(int64_t cin, int64_t dim, int64_t k, int64_t stride, int64_t padding);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "ConvEmbed"; }
};

// Depthwise conv (no bias) + BatchNorm, flattened to tokens.   x: (B,D,H,W) -> (B, H'*W', D)
struct ConvProjection : Module {
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm> bn;
  ConvProjection(int64_t dim, int64_t k, int64_t stride);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "ConvProjection"; }
};

// Convolutional projection attention over an h x w grid (+ a leading class token, which
// skips the convolutions and joins q, k and v as is).   x: (B,T,D) -> (B,T,D)
struct CvtAttention : Module {
  std::shared_ptr<ConvProjection> conv_proj_q, conv_proj_k, conv_proj_v;
  std::shared_ptr<Linear> proj_q, proj_k, proj_v, proj;
  int64_t heads, h, w;
  bool cls;
  double scale, attn_dropout, proj_dropout;
  CvtAttention(int64_t dim, int64_t heads, int64_t h, int64_t w, bool cls, const CvtOptions& o);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "CvtAttention"; }
};

// Linear -> QuickGELU -> Dropout -> Linear -> Dropout.   x: (B,T,D)
struct CvtMlp : Module {
  std::shared_ptr<Linear> fc1, fc2;
  double dropout;
  CvtMlp(int64_t dim, int64_t hidden, double dropout);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "CvtMlp"; }
};

struct CvtBlock : Module {
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<CvtAttention> attn;
  std::shared_ptr<CvtMlp> mlp;
  std::shared_ptr<DropPath> drop_path;
  CvtBlock(int64_t dim, int64_t heads, int64_t h, int64_t w, bool cls, double drop_path, const CvtOptions& o);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "CvtBlock"; }
};

// One stage: x (B,C,H,W) -> (B,D,H',W'), or with the class token the tokens (B, 1 + H'*W', D).
struct CvtStage : Module {
  std::shared_ptr<ConvEmbed> patch_embed;
  Tensor cls_token;  // (1,1,D), last stage only
  std::vector<std::shared_ptr<CvtBlock>> blocks;
  int64_t h, w;
  double emb_dropout;
  CvtStage(int64_t cin, int64_t in_res, size_t stage, bool cls, const CvtOptions& o);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "CvtStage"; }
};

struct ConvolutionalVisionTransformer : Module {
  CvtOptions opt;
  std::vector<std::shared_ptr<CvtStage>> stages;  // stage0, stage1, ...
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;
  explicit ConvolutionalVisionTransformer(const CvtOptions& o);
  Tensor forward(const Tensor& img) override;  // (B,C,H,W) -> logits (B, num_classes)
  const char* type_name() const override { return "CvT"; }
};

}  // namespace pw
