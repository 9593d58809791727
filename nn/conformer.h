// Conformer (Gulati et al. 2020, arXiv 2005.08100): convolution-augmented transformer for
// speech, and the same blocks over image patches.
//
//   block: x + 1/2 FF(x) -> x + MHSA(x) -> x + Conv(x) -> x + 1/2 FF(x) -> LayerNorm
//     FF    LayerNorm, Linear D -> ff_mult D, Swish, Dropout, Linear, Dropout
//     MHSA  LayerNorm, multi-head self-attention with relative positions (model.rel_pos,
//           nn/posenc.h; Shaw by default) and a key-padding mask, Dropout
//     Conv  LayerNorm, pointwise conv D -> 2D, GLU, depthwise conv1d (kernel conv_kernel,
//           "same" or causal padding), BatchNorm1d, Swish, pointwise conv, Dropout
//   front (audio): log-mel (B,1,F,T) -> two 3x3 stride-2 convs + ReLU -> Linear -> (B,T',D),
//           T' = ((T-1)/2 - 1)/2 (ESPnet's Conv2dSubsampling)
//   front (patches): images (B,C,H,W) -> patch tokens (nn/vit.h PatchEmbed)
//   head: classify (masked mean over valid frames -> Linear) or ctc (per-frame Linear ->
//           log_softmax, (B,T',num_classes), class 0 the CTC blank).
//
// Padding (forward_padded): frames at and after lengths[b] get no attention (an additive
// -1e9 on their keys), are zeroed before the depthwise conv (so a valid frame sees zeros
// there, exactly as at the end of an unpadded sequence) and leave the pooled mean out.
// With rel_pos != none the subsampled sequence is padded to the fixed length of
// model.max_frames (the relative-position tables are built for one length).
// NOTE: BatchNorm1d in training mode takes its batch statistics over padded frames too
// (as torchaudio and ESPnet); in eval mode, or with conv_norm: layer, padding changes nothing.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/posenc.h"
#include "nn/registry.h"
#include "nn/vit.h"

namespace pw {

struct ConformerOptions {
  // Core model keys: image_size (audio: the mel bins F of the input; patches: H = W),
  // channels, num_classes (ctc: the vocabulary + 1 for the blank).
  int64_t image_size = 80, channels = 1, num_classes = 10;
  std::string frontend = "subsampling";  // subsampling (log-mel) | patches (images)
  int64_t patch_size = 4;                 // patches
  std::string patch_embed = "linear";     // patches: nn/vit.h PatchEmbed kind
  int64_t max_frames = 101;               // subsampling with rel_pos: input frames the model takes at most
  int64_t dim = 144, depth = 4, heads = 4, ff_mult = 4, conv_kernel = 31;
  bool causal = false;
  std::string conv_norm = "batch";  // batch | layer
  double dropout = 0.1;
  std::string head = "classify";    // classify | ctc
  RelPosOptions rel_pos;            // kind shaw by default (ConformerOptions())
  ConformerOptions() { rel_pos.kind = "shaw"; }
  void bind(KeyBinder& b);
  static ConformerOptions from(const Options& model);
};

// Frames after the conv subsampling: ((T-1)/2 - 1)/2, at least 1.
int64_t conformer_subsampled(int64_t T);

// The key-padding mask joined to a relative-position term: logits + rel(q,k) + mask.
struct MaskedTerm : AttentionTerm {
  std::shared_ptr<AttentionTerm> inner;  // null: none
  Tensor mask;                           // (B,1,N,N) 0 / -1e9 on padded keys, or undefined
  explicit MaskedTerm(std::shared_ptr<AttentionTerm> t);
  Tensor logits_term(const Tensor& q, const Tensor& k) override;
  Tensor static_bias() override;
  bool has_logits_term() const override;
  Tensor qkv_term(const Tensor& qkv) override { return inner ? inner->qkv_term(qkv) : qkv; }
  bool has_output_term() const override { return inner && inner->has_output_term(); }
  Tensor output_term(const Tensor& attn, const Tensor& v) override { return inner->output_term(attn, v); }
  const char* type_name() const override { return "MaskedTerm"; }
};

// LayerNorm, Linear, Swish, Dropout, Linear, Dropout.   x: (B,N,D)
struct ConformerFeedForward : Module {
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> fc1, fc2;
  double p;
  ConformerFeedForward(int64_t d, int64_t hidden, double dropout);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "ConformerFeedForward"; }
};

// The convolution module.   x: (B,N,D), frame_mask: (B,N,1) 1 valid / 0 padded, or undefined
struct ConformerConv : Module {
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> pw1, pw2;  // the pointwise convs, as Linear over D
  Tensor dw_weight, dw_bias;         // depthwise: (D,1,K), (D)
  std::shared_ptr<BatchNorm> bn;
  std::shared_ptr<LayerNorm> ln;     // conv_norm: layer
  int64_t kernel;
  bool causal;
  double p;
  Tensor frame_mask;  // set by the Conformer before each forward
  ConformerConv(int64_t d, int64_t kernel, bool causal, const std::string& norm_kind, double dropout);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "ConformerConv"; }
};

struct ConformerBlock : Module {
  std::shared_ptr<ConformerFeedForward> ff1, ff2;
  std::shared_ptr<LayerNorm> attn_norm, norm;
  std::shared_ptr<Attention> attn;
  std::shared_ptr<MaskedTerm> term;
  std::shared_ptr<ConformerConv> conv;
  double p;
  ConformerBlock(const ConformerOptions& o, std::shared_ptr<AttentionTerm> rel);
  // Sets the padding of the next forward: mask (B,1,N,N) and frame_mask (B,N,1), or undefined.
  void set_padding(const Tensor& mask, const Tensor& frame_mask);
  Tensor forward(const Tensor& x) override;  // (B,N,D) -> (B,N,D)
  const char* type_name() const override { return "ConformerBlock"; }
};

// log-mel (B,1,F,T) -> (B,T',D).
struct ConvSubsampling : Module {
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Linear> out;
  ConvSubsampling(int64_t freq, int64_t channels, int64_t dim);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "ConvSubsampling"; }
};

struct Conformer : Module {
  ConformerOptions opt;
  std::shared_ptr<ConvSubsampling> subsampling;
  std::shared_ptr<PatchEmbed> patch_embed;
  std::vector<std::shared_ptr<ConformerBlock>> blocks;
  std::shared_ptr<Linear> head;
  explicit Conformer(const ConformerOptions& o);
  Tensor forward(const Tensor& x) override { return forward_padded(x, Tensor()); }
  // classify: (B,num_classes) logits; ctc: (B,T',num_classes) log-probabilities.
  Tensor forward_padded(const Tensor& x, const Tensor& lengths) override;
  // The valid output frames of each sample (ctc), (B) I64: lengths through the subsampling.
  Tensor output_lengths(const Tensor& lengths) const override;
  // The blocks' output (B,N,D) and the valid frames per sample (host), before the head.
  Tensor encode(const Tensor& x, const Tensor& lengths, std::vector<int64_t>* valid);
  const char* type_name() const override { return "Conformer"; }
};

// --- CTC decoding and scoring (host) ---

// Greedy CTC decoding: per sample, the argmax class of each of its lengths[b] frames, repeats
// collapsed, blanks dropped.   log_probs: (B,T,C)  lengths: (B) I64 or undefined (all T)
std::vector<std::vector<int64_t>> ctc_greedy_decode(const Tensor& log_probs, const Tensor& lengths,
                                                    int64_t blank = 0);
// Levenshtein distance between two token sequences (substitutions, insertions, deletions).
int64_t edit_distance(const std::vector<int64_t>& ref, const std::vector<int64_t>& hyp);
// Word error rate of a set of utterances: sum of edit distances / sum of reference lengths
// (the tokens are words).
double word_error_rate(const std::vector<std::vector<int64_t>>& refs, const std::vector<std::vector<int64_t>>& hyps);

}  // namespace pw
