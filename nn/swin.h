// Swin Transformer (Liu et al. 2021, arXiv 2103.14030): a hierarchical ViT whose
// attention runs inside non-overlapping M x M windows, shifted by M/2 every other
// block (cyclic roll plus a mask that keeps the rolled-in regions apart), with a
// learned relative position bias per window pair, and 2x2 patch merging between
// stages. Parameter names follow timm's swin_* models (layers.<i>.blocks.<j>...,
// layers.<i>.downsample, head.fc), so a checkpoint loads into timm with no name map
// (scripts/check_timm_swin.py).
//
// Feature maps that the window does not divide are padded at the bottom/right with
// zeros before the shift (the official detection backbone,
// Swin-Transformer-Object-Detection's SwinTransformerBlock), and the shift mask is
// built on the padded map; timm instead rolls first and pads after, which differs
// only when padding happens (never for Swin-T at 224).
//
// Shapes: B batch, H/W the token grid, C channels, M window side, N = M*M tokens
// of a window, nW windows per image, NH heads.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/registry.h"

namespace pw {

struct SwinOptions {
  // Core model keys (trainers/config_schema.cpp), read but not declared by bind().
  int64_t image_size = 224, channels = 3, num_classes = 1000;
  int64_t patch_size = 4;
  int64_t embed_dim = 96;
  std::vector<int64_t> depths = {2, 2, 6, 2};
  std::vector<int64_t> heads = {3, 6, 12, 24};
  int64_t window_size = 7;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double dropout = 0, drop_path = 0.2;
  void bind(KeyBinder& b);
  static SwinOptions from(const Options& model);
};
void check_swin_options(const Options& model);

// The attention mask of a shifted-window block on an Hp x Wp map (both multiples of M),
// shifted by s: the rolled map is cut into the regions [0, Hp-M), [Hp-M, Hp-s),
// [Hp-s, Hp) per axis (as the reference's img_mask), and a pair of tokens in one window
// gets `masked` (the reference: -100) when their regions differ, else 0.
//   -> (nW, N, N) row-major, windows in raster order, tokens of a window in raster order.
std::vector<double> swin_shift_mask(int64_t Hp, int64_t Wp, int64_t M, int64_t s, double masked = -100.0);

// (B,H,W,C) with H, W multiples of M -> (B*nW, M*M, C), windows in raster order.
Tensor window_partition(const Tensor& x, int64_t M);
// Its inverse: (B*nW, M*M, C) -> (B,H,W,C).
Tensor window_reverse(const Tensor& w, int64_t M, int64_t H, int64_t W);

// Multi-head self-attention within each window, with the relative position bias
// table ((2M-1)^2, NH) gathered by the precomputed index into (NH,N,N).
//   x: (B*nW, N, C) -> (B*nW, N, C); with a mask (nW,N,N) added to the logits of window b*nW + w
struct WindowAttention : Module {
  std::shared_ptr<Linear> qkv, proj;
  Tensor relative_position_bias_table;  // ((2M-1)^2, NH)
  RelIndex index;
  int64_t heads, window;
  double proj_dropout;
  Tensor mask;  // (nW,N,N) constant of a shifted block (set_mask), else undefined
  WindowAttention(int64_t dim, int64_t heads, int64_t window, bool qkv_bias, double proj_dropout);
  void set_mask(Tensor m);
  Tensor relative_position_bias();  // (NH,N,N)
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "WindowAttention"; }
};

// x + DropPath(WindowAttn(LN(x))), then x + DropPath(MLP(LN(x))).   x: (B,H,W,C)
// The window and shift are fixed for the block's input resolution H x W: a map no
// larger than the window gets one window of its size and no shift (the reference).
struct SwinBlock : Module {
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<WindowAttention> attn;
  std::shared_ptr<FeedForward> mlp;
  std::shared_ptr<DropPath> drop_path;
  int64_t H, W, window, shift, Hp, Wp;
  Tensor attn_mask;  // (nW,N,N), a constant; undefined without shift
  SwinBlock(int64_t dim, int64_t H, int64_t W, int64_t heads, int64_t window, bool shifted, double mlp_ratio,
            bool qkv_bias, double dropout, double drop_path);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "SwinBlock"; }
};

// 2x2 neighbours concatenated (x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]),
// LN, Linear 4C -> 2C without bias. An odd H or W is padded by one zero row/column.
//   x: (B,H,W,C) -> (B,ceil(H/2),ceil(W/2),2C)
struct PatchMerging : Module {
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> reduction;
  explicit PatchMerging(int64_t dim);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "PatchMerging"; }
};

// One stage: an optional PatchMerging (stages after the first), then the blocks
// (every second one shifted).   x: (B,H,W,C) -> (B,H',W',C')
struct SwinStage : Module {
  std::shared_ptr<PatchMerging> downsample;
  std::vector<std::shared_ptr<SwinBlock>> blocks;
  // dim, res: the stage's input width and side; drop_paths: one rate per block.
  SwinStage(int64_t dim, int64_t res, bool merge, int64_t heads, int64_t window, double mlp_ratio, bool qkv_bias,
            double dropout, const std::vector<double>& drop_paths);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "SwinStage"; }
};

struct SwinTransformer : Module {
  SwinOptions opt;
  std::shared_ptr<Conv2d> patch_proj;     // patch_embed.proj
  std::shared_ptr<LayerNorm> patch_norm;  // patch_embed.norm
  std::vector<std::shared_ptr<SwinStage>> layers;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;  // head.fc
  explicit SwinTransformer(const SwinOptions& o);
  // img (B,C,H,W) -> (B, H/P, W/P, D): patch partition, linear embedding, LN.
  Tensor embed(const Tensor& img);
  Tensor forward(const Tensor& img) override;  // -> logits (B, num_classes)
  const char* type_name() const override { return "SwinTransformer"; }
};

}  // namespace pw
