// Relative position encodings for the vision transformers, each a config option
// (model.rel_pos) with its own keys and its paper's defaults. Absolute encodings
// (model.pos_embed: sincos2d, learned, sinusoidal, none) add to the tokens in
// nn/vit.cpp; these act inside attention through the AttentionTerm hook (nn/layers.h):
//
//   swin    Swin (Liu et al. 2021): a learned ((2h-1)(2w-1), NH) table gathered by the
//           relative offset of two patches into a bias (NH,N,N): static, fused attention.
//   irpe    iRPE (Wu et al. 2021, arXiv 2107.14222), the piecewise bucket of the offset
//           (methods euclidean, quantized, cross, product) indexing learned tables.
//           irpe_mode bias: a (buckets, NH or 1) scalar table, on the keys: static, fused.
//           irpe_mode contextual: (NH or 1, HD, buckets) tables on the sides irpe_on names:
//           k adds scale q_i . r^K_b(i,j), q adds scale k_j . r^Q_b(j,i) (iRPE's rpe_q(k)^T),
//           v adds sum_j a_ij r^V_b(i,j) to the output. Composed op by op from
//           rel_logits_gather / rel_logits_scatter.
//   alibi   2D ALiBi: -slope_h * |p_i - p_j| (euclidean or manhattan) with ALiBi's head
//           slopes (Press et al. 2022): a constant bias, fused.
//   rope2d  2D axial RoPE (Heo et al. 2024): q and k rotated by the column (first half of
//           each head's pairs) and row (second half) of their patch: qkv path, fused.
//   shaw    Shaw et al. 2018, in 2D: learned ((2k+1)^2, HD) tables for clipped offsets,
//           shared by the heads; the key side adds scale * q_i . rK[idx(i,j)] to the logits,
//           the value side (shaw_values) adds sum_j a_ij rV[idx(i,j)] to the output.
//           Composed op by op (contextual).
//   xl      Transformer-XL (Dai et al. 2019, arXiv 1901.02860): sinusoidal embeddings R of
//           the relative distance i - j, projected per layer by a learned W_R, and learned
//           u, v biases per head: logits = q.k + q.W_R R_{i-j} + u.k + v.W_R R_{i-j}
//           (terms a-d), all scaled by 1/sqrt(HD); the b+d scores against the 2N-1
//           distances are moved into place by rel_shift. On an image the patches are in
//           raster order and i - j is their 1D raster distance (row-major); a 1 x N grid is a
//           plain sequence. Composed op by op (contextual).
//   huang   Huang et al. 2020 (arXiv 2009.13658, method 4): (q_i + p_ij).(k_j + p_ij) - p_ij.p_ij
//           = q.k + q_i.p_ij + p_ij.k_j, p_ij a learned (T, HD) table of Shaw's clipped 2D
//           offsets (model.rel_pos_clip), shared by the heads. Composed op by op.
//
// The class token (pool: cls) gets no relative position: its row and column of a bias
// are 0 (swin, alibi, shaw), RoPE leaves it unrotated, and iRPE gives it its own learned
// bucket (iRPE's "skip": one extra table row for every pair with the class token).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/keys.h"
#include "kernels/ops.h"
#include "nn/layers.h"

namespace pw {

// The model.rel_pos keys (a model's options struct holds one and binds it).
struct RelPosOptions {
  std::string kind = "none";  // none | swin | alibi | rope2d | shaw | irpe | xl | huang
  int64_t clip = 16;          // shaw, huang: clipping distance k per axis (Shaw et al.: 16)
  bool shaw_values = true;    // shaw: also the value-side term
  std::string alibi_distance = "euclidean";  // model.rel_pos_distance (alibi): euclidean | manhattan
  double rope_base = 100;     // rope2d: theta (Heo et al. 2024: 100)
  std::string irpe_method = "product";  // euclidean | quantized | cross | product
  double irpe_ratio = 1.9;    // alpha = ratio, beta = 2 ratio, gamma = 8 ratio (iRPE's defaults)
  bool irpe_shared_head = true;  // one table for all heads (iRPE's default)
  std::string irpe_mode = "bias";  // bias | contextual
  std::string irpe_on = "k";       // contextual: k | qk | kv | qkv (bias: k only)
  int64_t sasa_kernel = 7;         // model.attention: sasa: the k x k window (SASA: 7)
  void bind(KeyBinder& b);
};

// The term of one attention layer over an h x w patch grid, with `skip` leading
// non-patch tokens (0, or 1 for a class token); nullptr for kind none.
std::shared_ptr<AttentionTerm> make_rel_pos(const RelPosOptions& o, int64_t h, int64_t w, int64_t heads,
                                            int64_t dim_head, int64_t skip);

// --- index tables (host, row-major (N,N), N = h*w, patches in raster order) ---

// Swin: ((ri - rj + h-1) * (2w-1) + (ci - cj + w-1)), in [0, (2h-1)(2w-1)).
std::vector<int64_t> swin_relative_index(int64_t h, int64_t w);
// Shaw in 2D: (clip(rj - ri) + k) * (2k+1) + clip(cj - ci) + k, clip to [-k, k]; in [0, (2k+1)^2).
std::vector<int64_t> shaw_relative_index(int64_t h, int64_t w, int64_t k);
// iRPE's piecewise index g(x): round(x) for |x| <= alpha, else
// sign(x) * min(round(alpha + ln(|x|/alpha) / ln(gamma/alpha) * (beta - alpha)), beta),
// truncated to an integer (float32 arithmetic, as iRPE's PyTorch code).
int64_t irpe_piecewise(double x, double alpha, double beta, double gamma);
// iRPE's bucket ids for method euclidean, quantized, product, cross_rows or cross_cols
// (cross = the sum of the last two); num_buckets gets the table size: (2 beta_int + 1)^2
// for product, else 2 beta_int + 1.
std::vector<int64_t> irpe_bucket_index(const std::string& method, int64_t h, int64_t w, double alpha, double beta,
                                       double gamma, int64_t* num_buckets);
// (N,N) -> (N+skip, N+skip): the first `skip` rows and columns get `value`.
std::vector<int64_t> with_skip(const std::vector<int64_t>& idx, int64_t N, int64_t skip, int64_t value);
// ALiBi's head slopes: 2^(-8/n), its powers, and the interleave for n not a power of two.
std::vector<double> alibi_slopes(int64_t heads);
// -slope_h * distance(p_i, p_j), 0 on the skip rows and columns.   -> (NH, N+skip, N+skip)
Tensor alibi_bias_2d(int64_t h, int64_t w, int64_t heads, const std::string& distance, int64_t skip);
// 2D axial RoPE angles (N+skip, HD/2): pair m < HD/4 turns by col * f_m, pair HD/4 + m by
// row * f_m, f_m = base^(-4m/HD); 0 on the skip rows. HD must be a multiple of 4.
std::vector<double> rope_axial_angles(int64_t h, int64_t w, int64_t dim_head, double base, int64_t skip);

// Transformer-XL's sinusoidal relative embeddings of the distances n-1, n-2, .., -(n-1):
// (2n-1, dim), row c = [sin(d f_0), .., sin(d f_{dim/2-1}), cos(d f_0), ..], d = n-1-c,
// f_m = 1 / 10000^(2m/dim) (XL's PositionalEmbedding: the sines, then the cosines).
Tensor xl_relative_sinusoid(int64_t n, int64_t dim);

// --- resolution extrapolation (patchwork eval --image-size) ---
//
// A model built for another image size than its checkpoint: learned absolute tables are
// interpolated (bicubic by default, bilinear as an option; DeiT and PVT), Swin's relative
// bias table ((2h-1)(2w-1), NH) is interpolated as a (2h-1) x (2w-1) grid (Swin's
// fine-tuning recipe); fixed tables (sincos2d, sinusoidal, alibi, rope2d, XL's R) and the
// index tables are constants the model rebuilds for its grid; the other relative tables
// (iRPE buckets, Shaw/Huang clipped offsets, XL's W_R, u, v) and PEG's conv do not
// depend on the grid and load as they are.

// pe: (1, skip + h0*w0, D) -> (1, skip + h1*w1, D): the patch rows as an h0 x w0 grid,
// interpolated (torch's align_corners=False), the first `skip` rows (class token) kept.
// mode: bicubic | bilinear.
Tensor resize_pos_embed(const Tensor& pe, int64_t skip, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                        const std::string& mode);
// Swin's table ((2h0-1)(2w0-1), NH) -> ((2h1-1)(2w1-1), NH), as a grid of offsets.
Tensor resize_rel_table(const Tensor& table, int64_t h0, int64_t w0, int64_t h1, int64_t w1, const std::string& mode);
// The checkpoint tensors `sd` fitted to `model` (square grids): each one whose shape differs
// from the model's tensor of that name is resized if it is a learned pos_embed (1, skip+s0^2, D)
// or a Swin table ((2 s0-1)^2, NH); the rest is left for load_state_dict to check.
// `resized` (optional) gets the names it resized.
std::map<std::string, Tensor> fit_state_dict_to_resolution(const Module& model, std::map<std::string, Tensor> sd,
                                                           const std::string& mode,
                                                           std::vector<std::string>* resized = nullptr);

// --- the terms ---

// The rows of a (T, ...) relative table that a grid reads, and its indexes renumbered onto
// them. A grid smaller than the clipping distance k reads (2 min(k,h-1)+1)(2 min(k,w-1)+1)
// of Shaw's (2k+1)^2 rows (169 of 1089 for a 7x7 grid and k = 16), so the (B,NH,N,T)
// products q r^T and scatter(a) r shrink by that factor; the table keeps its paper shape
// (checkpoints, another grid at evaluation). rows: (T_used) int64, undefined when every
// row is read (then the indexes are the given ones).
struct UsedRows {
  Tensor rows;
  std::vector<RelIndex> index;
};
UsedRows used_rows(const std::vector<RelIndex>& full);

// A term that keeps relative indexes: registers their tensors as constants, so that
// Module::to() moves them with the term (constants are not state: not in checkpoints).
struct RelIndexTerm : AttentionTerm {
 protected:
  void add_index(const std::string& name, const RelIndex& r);  // NAME, NAME_inv_off, NAME_inv_pos
  // used_rows and NAME_used... for each names[p] (u.index[p]); nothing when every row is read
  void add_used(const UsedRows& u, const std::vector<std::string>& names);
};

// A sum of learned tables, each gathered by its index into an additive bias (swin, irpe).
struct RelTableBias : RelIndexTerm {
  std::vector<Tensor> tables;      // (T_k, NH or 1)
  std::vector<RelIndex> indexes;   // (N,N) each, tensors moved with the model
  void add_table(const std::string& name, RelIndex index, int64_t heads, double init_std);
  Tensor static_bias() override;  // (NH or 1, N, N)
  const char* type_name() const override { return "RelTableBias"; }
};

// A constant bias (NH,N,N) (alibi).
struct FixedBias : AttentionTerm {
  Tensor bias;
  explicit FixedBias(Tensor b) : bias(add_constant("bias", std::move(b))) {}
  Tensor static_bias() override { return bias; }
  const char* type_name() const override { return "FixedBias"; }
};

// Rotary embedding of q and k (rope2d).   cos, sin: (N,HD/2)
struct RotaryQK : AttentionTerm {
  Tensor cos, sin;
  int64_t heads;
  RotaryQK(const std::vector<double>& angles, int64_t n, int64_t half, int64_t heads);
  bool has_logits_term() const override { return false; }
  Tensor qkv_term(const Tensor& qkv) override;
  const char* type_name() const override { return "RotaryQK"; }
};

// Shaw et al.'s relative representations on the key and (optionally) value side.
//   table_k, table_v: (T, HD)
struct ShawTerm : RelIndexTerm {
  Tensor table_k, table_v;
  RelIndex index;  // (M,M) into the table's T rows
  UsedRows used;   // the rows this grid reads (logits_term, output_term use them)
  ShawTerm(RelIndex index, int64_t dim_head, bool values);
  Tensor logits_term(const Tensor& q, const Tensor& k) override;  // scale * q . rK -> (B,NH,N,N)
  bool has_output_term() const override { return table_v.defined(); }
  Tensor output_term(const Tensor& attn, const Tensor& v) override;  // sum_j a_ij rV -> (B,NH,N,HD)
  const char* type_name() const override { return "ShawTerm"; }
};

// iRPE's contextual mode: per bucket index (one; two for cross), tables on the key,
// query and value sides (any of them; the others empty).
//   table_k[p], table_q[p]: (NH or 1, HD, T_p)   table_v[p]: (NH or 1, T_p, HD)
struct IrpeContextTerm : RelIndexTerm {
  std::vector<RelIndex> indexes;
  std::vector<Tensor> table_q, table_k, table_v;
  IrpeContextTerm(std::vector<RelIndex> indexes, int64_t th, int64_t dim_head, const std::string& on);
  bool has_logits_term() const override { return !table_q.empty() || !table_k.empty(); }
  Tensor logits_term(const Tensor& q, const Tensor& k) override;  // -> (B,NH,N,N)
  bool has_output_term() const override { return !table_v.empty(); }
  Tensor output_term(const Tensor& attn, const Tensor& v) override;  // -> (B,NH,N,HD)
  const char* type_name() const override { return "IrpeContextTerm"; }
};

// A key-padding mask around another term (or none): keys at or past skip + lengths[b]
// get -1e9 on every logit (no attention after the softmax); everything else is the
// inner term's. set_lengths before each forward of a padded batch (Conformer's
// forward_padded); undefined lengths = no mask. The mask has no gradient.
//   lengths: (B) I64, the valid tokens after the `skip` leading ones
Tensor key_padding_bias(const Tensor& lengths, int64_t n, int64_t skip = 0);  // -> (B,1,n,n) float32
struct KeyPaddingTerm : AttentionTerm {
  std::shared_ptr<AttentionTerm> inner;  // may be null
  Tensor mask;                           // (B,1,N,N) or undefined
  int64_t skip;
  explicit KeyPaddingTerm(std::shared_ptr<AttentionTerm> inner, int64_t skip = 0);
  void set_lengths(const Tensor& lengths, int64_t n, Device d);
  Tensor static_bias() override;
  Tensor logits_term(const Tensor& q, const Tensor& k) override;
  bool has_logits_term() const override { return mask.defined() || (inner && inner->has_logits_term()); }
  Tensor qkv_term(const Tensor& qkv) override { return inner ? inner->qkv_term(qkv) : qkv; }
  bool has_output_term() const override { return inner && inner->has_output_term(); }
  Tensor output_term(const Tensor& attn, const Tensor& v) override { return inner->output_term(attn, v); }
  const char* type_name() const override { return "KeyPaddingTerm"; }
};

// SASA (Ramachandran et al. 2019, arXiv 1906.05909): each patch attends to the patches of
// the k x k window centred on it (clipped at the image border: no padding keys), with
// factorised relative embeddings: logits += scale * (q[:HD/2] . r_row[dr] + q[HD/2:] .
// r_col[dc]), (dr, dc) = p_j - p_i in [-k/2, k/2]^2. A class token attends to and is
// attended by every token, with no relative embedding.   row, col: (k, HD/2)
// attend() runs the fused local_attention_rel (kernels/local_attention): O(M k^2 HD) per
// head, only the window's keys. The masked composition is kept (masked = true, or
// Attention with attention dropout in training, which never calls attend()):
// logits_term is the embeddings gathered over the full M x M logits plus -1e9 outside
// the window, O(M^2); its index and mask constants are built on first use only.
// Checkpoints hold row and col alone (constants are not state), in both forms.
struct SasaTerm : RelIndexTerm {
  Tensor row, col;
  int64_t h, w, kernel, skip;
  bool masked = false;  // true: attend() declines, Attention composes with logits_term
  SasaTerm(int64_t h, int64_t w, int64_t dim_head, int64_t kernel, int64_t skip);
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) override;  // -> (B,NH,M,HD)
  Tensor logits_term(const Tensor& q, const Tensor& k) override;             // -> (B,NH,M,M)
  // softmax(scale q k^T + logits_term(q, k)) v: the masked O(M^2) composition that
  // Attention runs without attend() (the reference of tests and `patchwork bench attention
  // --sasa`). r, c: other tables in place of row, col (a float64 test), or undefined.
  Tensor masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& r = Tensor(),
                          const Tensor& c = Tensor());
  const char* type_name() const override { return "SasaTerm"; }

 private:
  RelIndex index_row_, index_col_;  // (M,M): dr + k/2, dc + k/2 inside the window, else -1
  Tensor mask_;                     // (M,M): 0 inside the window, -1e9 outside
  void build_masked(Device d);      // the three above, as constants on d
  Tensor masked_logits(const Tensor& q, const Tensor& r, const Tensor& c);  // logits_term with tables r, c
};

// Transformer-XL's relative terms (b), (c), (d) over M = N + skip tokens in raster order:
//   scale * (rel_shift((q + v) (R W_R^T)^T) + u . k_j), R: (2M-1, NH*HD) fixed, W_R: (NH*HD, NH*HD).
// The class-token rows and columns get no (b), (d) (mask); u . k_j is content, kept.
// Without a class token the term takes any number of tokens (R recomputed for another
// length: variable-length sequences).
struct XlTerm : AttentionTerm {
  std::shared_ptr<Linear> w_r;  // no bias
  Tensor u, v;                  // (NH,HD): XL's global content and position biases
  Tensor r;                     // (2M-1, NH*HD) constant
  Tensor mask;                  // (M,M) constant 0/1 on the class token pairs; undefined without one
  int64_t heads, dim_head;
  XlTerm(int64_t n, int64_t heads, int64_t dim_head, int64_t skip);
  Tensor logits_term(const Tensor& q, const Tensor& k) override;  // -> (B,NH,M,M)
  const char* type_name() const override { return "XlTerm"; }
};

// Huang et al.'s method 4: scale * (q_i . p_idx(i,j) + p_idx(i,j) . k_j).   table: (T, HD)
struct HuangTerm : RelIndexTerm {
  Tensor table;
  RelIndex index, index_t;  // idx and its transpose (idx_t[j,i] = idx[i,j])
  UsedRows used;            // the rows this grid reads: index, index_t renumbered onto them
  HuangTerm(RelIndex index, RelIndex index_t, int64_t dim_head);
  Tensor logits_term(const Tensor& q, const Tensor& k) override;  // -> (B,NH,N,N)
  const char* type_name() const override { return "HuangTerm"; }
};

}  // namespace pw
