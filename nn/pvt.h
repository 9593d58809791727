// Pyramid vision transformers: four (or any number of) stages, each a strided patch
// embedding (conv + LayerNorm) that halves the token grid, then transformer blocks whose
// attention reads the grid. One class, three registered models:
//
//   pvt          PVT v1 (Wang et al. 2021, arXiv 2102.12122; official whai362/PVT):
//                spatial-reduction attention (SRA: queries from all N tokens, keys and
//                values from the tokens reduced by a ratio-R strided conv + LayerNorm),
//                learned position embeddings per stage (bilinearly resized when the input
//                size changes), a class token in the last stage feeds the head.
//   twins_pcpvt  Twins-PCPVT (Chu et al. 2021, arXiv 2104.13840): PVT with a PEG
//                (nn/peg.h) after the first block of each stage instead of absolute
//                positions, global average pooling.
//   twins_svt    Twins-SVT: blocks alternate locally-grouped self-attention (LSA, full
//                attention inside non-overlapping ws x ws windows; the grid is zero-padded
//                to a multiple of ws, as the reference does) and global sub-sampled
//                attention (GSA = SRA), PEG after the first block of each stage.
//
// Parameter names are the official code's: PVT's (patch_embed1, pos_embed1, block1.0.attn.q,
// ..., cls_token) and timm's for Twins (patch_embeds.0, blocks.0.0.attn.kv, pos_block.0.proj.0),
// so a checkpoint's safetensors load into timm's twins_* models with no name map.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/peg.h"
#include "nn/registry.h"

namespace pw {

struct PvtOptions {
  // Core model keys (trainers/config_schema.cpp), read but not declared by bind().
  int64_t image_size = 224, channels = 3, num_classes = 1000;
  std::string variant = "pvt";  // pvt | twins_pcpvt | twins_svt (model.type; not a key)
  int64_t patch_size = 4;       // the first stage's patch; later stages merge 2x2
  // One entry per stage; all lists have the same length. Defaults: PVT-Tiny.
  std::vector<int64_t> embed_dims = {64, 128, 320, 512};
  std::vector<int64_t> num_heads = {1, 2, 5, 8};
  std::vector<int64_t> mlp_ratios = {8, 8, 4, 4};
  std::vector<int64_t> depths = {2, 2, 2, 2};
  std::vector<int64_t> sr_ratios = {8, 4, 2, 1};
  std::vector<int64_t> window_sizes = {7, 7, 7, 7};  // twins_svt: LSA windows per stage
  bool qkv_bias = true;
  double dropout = 0, attn_dropout = 0, drop_path = 0.1;
  std::string pos_embed = "learned";  // learned (per stage) | peg (after each stage's first block) | none
  std::string pool = "cls";           // cls (class token in the last stage) | mean
  static PvtOptions pvt();            // PVT-Tiny
  static PvtOptions twins_pcpvt();    // Twins-PCPVT-S
  static PvtOptions twins_svt();      // Twins-SVT-S
  void bind(KeyBinder& b);
  static PvtOptions from(const Options& model);
};
void check_pvt_options(const Options& model);

// Spatial-reduction attention (PVT's SRA, Twins' GSA).   x: (B, E + h*w, D) -> same.
// q: (B,NH,N,HD) from all tokens; k, v: (B,NH,M,HD) from the grid reduced by an R x R
// stride-R conv + LayerNorm (M = (h/R)(w/R)), or from all tokens when R == 1 (then fused).
struct SRAttention : GridModule {
  std::shared_ptr<Linear> q, kv, proj;
  std::shared_ptr<Conv2d> sr;      // R > 1 only
  std::shared_ptr<LayerNorm> norm;  // R > 1 only
  int64_t heads, sr_ratio;
  double attn_dropout, proj_dropout;
  SRAttention(int64_t dim, int64_t heads, int64_t sr_ratio, bool qkv_bias, double attn_dropout, double proj_dropout);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "SRAttention"; }
};

// Locally-grouped self-attention (Twins-SVT's LSA).   x: (B, h*w, D) -> same; attention
// inside each ws x ws window of the grid zero-padded to multiples of ws (padded tokens are
// attended to, as in the reference's forward_padding).
struct LocalGroupedAttention : GridModule {
  std::shared_ptr<Linear> qkv, proj;
  int64_t heads, ws;
  double attn_dropout, proj_dropout;
  LocalGroupedAttention(int64_t dim, int64_t heads, int64_t ws, double attn_dropout, double proj_dropout);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "LocalGroupedAttention"; }
};

// Pre-norm block over a grid: x + DropPath(Attn(LN(x))); x + DropPath(MLP(LN(x))).
struct PyramidBlock : GridModule {
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<GridModule> attn;  // SRAttention or LocalGroupedAttention
  std::shared_ptr<FeedForward> mlp;
  std::shared_ptr<DropPath> drop_path;
  PyramidBlock(int64_t dim, std::shared_ptr<GridModule> attn, int64_t mlp_dim, double dropout, double drop_path);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "PyramidBlock"; }
};

// img (B,C,H,W) -> tokens (B, (H/P)(W/P), D) by a P x P stride-P conv, then LayerNorm.
struct PyramidPatchEmbed : Module {
  std::shared_ptr<Conv2d> proj;
  std::shared_ptr<LayerNorm> norm;
  int64_t patch;
  PyramidPatchEmbed(int64_t cin, int64_t dim, int64_t patch);
  Tensor forward(const Tensor& img) override;  // the grid of the output: (H/P, W/P), floored
  const char* type_name() const override { return "PyramidPatchEmbed"; }
};

struct PyramidTransformer : Module {
  PvtOptions opt;
  std::vector<std::shared_ptr<PyramidPatchEmbed>> patch_embeds;      // per stage
  std::vector<Tensor> pos_embeds;                                    // learned: (1, n_s (+1 last, cls), D_s)
  std::vector<int64_t> pos_sides;                                    // learned: the tables' grid side
  std::vector<std::vector<std::shared_ptr<PyramidBlock>>> blocks;    // per stage
  std::vector<std::shared_ptr<PEG>> pegs;                            // peg: per stage
  Tensor cls_token;                                                  // pool cls: (1,1,D_last)
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;
  explicit PyramidTransformer(const PvtOptions& o);
  // (B,C,H,W) -> logits (B, num_classes)
  Tensor forward(const Tensor& img) override;
  std::vector<Shape> last_stage_shapes;  // the token shapes of the last forward, per stage
  const char* type_name() const override { return "PyramidTransformer"; }
};

}  // namespace pw
