// Building blocks of the vision transformers.   Shapes: B batch, N tokens,
// D model width, NH heads, HD head dim, C channels, H/W height/width.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "kernels/ops.h"
#include "nn/module.h"

namespace pw {

// y = x W^T + b.   x: (..., Din)  W: (Dout, Din)  b: (Dout)
struct Linear : Module {
  Tensor weight, bias;
  Linear(int64_t din, int64_t dout, bool with_bias = true);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "Linear"; }
};

// Re-initialises every Linear in a module tree:
//   "timm":   trunc_normal(std .02) weights, zero biases (timm's ViT; what Linear does by default)
//   "torch":  PyTorch's nn.Linear default, kaiming_uniform(a=sqrt 5) weights, U(+-1/sqrt(fan_in)) biases
//             (lucidrains' SimpleViT, which keeps PyTorch's defaults)
//   "xavier": xavier_uniform weights, zero biases (big_vision's MLP blocks)
void init_linears(Module& m, const std::string& scheme);

// Normalises the last dim.   x: (..., D)
struct LayerNorm : Module {
  Tensor weight, bias;
  double eps;
  explicit LayerNorm(int64_t d, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "LayerNorm"; }
};

// x: (B,C) | (B,C,L) | (B,C,H,W); running statistics are buffers.
// In training mode every BatchNorm uses the process's SyncBN hook when one is set
// (set_batch_norm_sync; the data-parallel trainer installs it with dist.sync_bn), else
// its local batch statistics.
struct BatchNorm : Module {
  Tensor weight, bias, running_mean, running_var;
  double momentum, eps;
  explicit BatchNorm(int64_t c, double momentum = 0.1, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "BatchNorm"; }
};

// The SyncBN hook every BatchNorm passes to batch_norm in training (null: local statistics).
void set_batch_norm_sync(BatchNormSync* sync);
BatchNormSync* batch_norm_sync();

// x: (B,C,H,W)  weight: (O, C/groups, K, K)
struct Conv2d : Module {
  Tensor weight, bias;
  int64_t stride, padding, dilation, groups;
  Conv2d(int64_t cin, int64_t cout, int64_t k, int64_t stride = 1, int64_t padding = 0,
         int64_t groups = 1, bool with_bias = true, int64_t dilation = 1);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "Conv2d"; }
};

struct Dropout : Module {
  double p;
  explicit Dropout(double p) : p(p) {}
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "Dropout"; }
};

// Stochastic depth: drops whole samples of a residual branch.
struct DropPath : Module {
  double p;
  explicit DropPath(double p) : p(p) {}
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "DropPath"; }
};

// Linear -> GELU -> Dropout -> Linear -> Dropout.   x: (B,N,D)
struct FeedForward : Module {
  std::shared_ptr<Linear> fc1, fc2;
  double dropout;
  FeedForward(int64_t d, int64_t hidden, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "FeedForward"; }
};

// The position-encoding hook of Attention: an additive term on the attention logits
// (relative position biases, masks, contextual encodings), and the paths on the
// query/key side (a rewrite of the packed qkv: RoPE) and the value side (an
// additive term on the attention output: Shaw's sum_j a_ij r_ij). nn/posenc.h has
// the encodings built on it.
//   q, k, v: (B,NH,N,HD)
struct AttentionTerm : Module {
  // The additive logits term, broadcastable to (B,NH,N,N). Default: static_bias().
  virtual Tensor logits_term(const Tensor& q, const Tensor& k) { return static_bias(); }
  // A term that does not read q and k (a learned relative position bias, a mask) may
  // return its value here, shaped (N,N), (NH or 1,N,N) or (B or 1,NH or 1,N,N): Attention
  // then runs the fused attention_qkv_bias kernel instead of logits_term. Undefined (the
  // default): the term depends on q, k and Attention composes the logits op by op.
  virtual Tensor static_bias() { return Tensor(); }
  // False: the term adds nothing to the logits (only a qkv or an output path).
  virtual bool has_logits_term() const { return true; }
  // The query/key side: the packed projection (B,N,3*NH*HD) before attention, rewritten
  // (RoPE rotates q and k). Default: as is. Attention stays fused.
  virtual Tensor qkv_term(const Tensor& qkv) { return qkv; }
  // The value side: a term added to the attention output softmax(..) v, (B,NH,N,HD),
  // from the probabilities attn (B,NH,N,N) (after dropout) and v. Only called when
  // has_output_term(); such a term makes Attention compose op by op.
  virtual bool has_output_term() const { return false; }
  virtual Tensor output_term(const Tensor& attn, const Tensor& v) { return Tensor(); }
  // A term that computes the whole attention itself (SASA's local window): the output
  // (B,NH,N,HD) from q, k, v, or undefined (the default) to compose the logits op by op.
  // Attention asks only when no dropout acts on the probabilities.
  virtual Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) { return Tensor(); }
};

// Multi-head self-attention.   x: (B,N,D) -> (B,N,D)
struct Attention : Module {
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<AttentionTerm> term;  // optional hook (null = none); set with set_term()
  int64_t heads, dim_head;
  double attn_dropout, proj_dropout;
  // softmax | linear_taylor | linear_elu (linear_attention_qkv with that feature map;
  // no logits term, no attention dropout). Set after construction (VisionTransformer does).
  std::string kind = "softmax";
  Attention(int64_t d, int64_t heads, int64_t dim_head, bool qkv_bias = false,
            double attn_dropout = 0.0, double proj_dropout = 0.0);
  // Installs the logits hook as the child "term", so its parameters train and
  // are saved with the model. Once per Attention.
  void set_term(std::shared_ptr<AttentionTerm> t);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "Attention"; }
};

// Pre-norm transformer block: x + DropPath(Attn(LN(x))); x + DropPath(FF(LN(x))).
struct Block : Module {
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Attention> attn;
  std::shared_ptr<FeedForward> mlp;
  std::shared_ptr<DropPath> drop_path;
  Block(int64_t d, int64_t heads, int64_t dim_head, int64_t mlp_dim, bool qkv_bias, double dropout,
        double attn_dropout, double drop_path);
  Tensor forward(const Tensor& x) override;
  const char* type_name() const override { return "Block"; }
};

// --- fixed position encodings (buffers, not parameters) ---

// SimpleViT's posemb_sincos_2d: (h*w, dim), rows in raster order,
// columns [sin(x*omega), cos(x*omega), sin(y*omega), cos(y*omega)]. Computed in
// double: within 2e-7 of lucidrains' float32 table (tests/test_nn.cpp).
Tensor posemb_sincos_2d(int64_t h, int64_t w, int64_t dim, double temperature = 10000.0);
// The Transformer's 1D sinusoidal table: (n, dim), pe[p, 2i] = sin(p / 10000^(2i/dim)), pe[p, 2i+1] = cos(...).
Tensor posemb_sinusoidal_1d(int64_t n, int64_t dim, double base = 10000.0);

}  // namespace pw
