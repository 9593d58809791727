#include "nn/pvt.h"

#include <cmath>

namespace pw {

PvtOptions PvtOptions::pvt() { return PvtOptions{}; }
PvtOptions PvtOptions::twins_pcpvt() {
  PvtOptions o;
  o.variant = "twins_pcpvt";
  o.depths = {3, 4, 6, 3};
  o.pos_embed = "peg";
  o.pool = "mean";
  o.drop_path = 0.2;
  return o;
}
PvtOptions PvtOptions::twins_svt() {
  PvtOptions o = twins_pcpvt();
  o.variant = "twins_svt";
  o.embed_dims = {64, 128, 256, 512};
  o.num_heads = {2, 4, 8, 16};
  o.mlp_ratios = {4, 4, 4, 4};
  o.depths = {2, 2, 10, 4};
  return o;
}

void PvtOptions::bind(KeyBinder& b) {
  b("patch_size", patch_size, KeySpec::Int("the first stage's patch height and width; later stages merge 2x2").ge(1));
  b("embed_dims", embed_dims, KeySpec::Ints("token width D of each stage (one entry per stage)").ge(1));
  b("num_heads", num_heads, KeySpec::Ints("attention heads of each stage; each divides its embed_dims entry").ge(1));
  b("mlp_ratios", mlp_ratios, KeySpec::Ints("MLP hidden width / D of each stage").ge(1));
  b("depths", depths, KeySpec::Ints("blocks per stage").ge(1));
  b("sr_ratios", sr_ratios,
    KeySpec::Ints("spatial reduction R of each stage: keys and values from an R x R stride-R conv of the grid "
                  "(1: from all tokens)")
        .ge(1));
  if (variant == "twins_svt")
    b("window_sizes", window_sizes,
      KeySpec::Ints("LSA window side of each stage (even blocks; odd blocks are global sub-sampled attention)").ge(1));
  if (variant == "pvt")  // Twins' GSA and LSA always have it (timm)
    b("qkv_bias", qkv_bias, KeySpec::Bool("bias in the query and key/value projections"));
  b("dropout", dropout, KeySpec::Float("dropout after attention and MLP projections and on the embeddings").ge(0).lt(1));
  b("attn_dropout", attn_dropout, KeySpec::Float("dropout on attention weights").ge(0).lt(1));
  b("drop_path", drop_path, KeySpec::Float("stochastic depth rate of the last block (linear from 0 over all blocks)")
                                .ge(0)
                                .lt(1));
  b("pos_embed", pos_embed,
    KeySpec::Enum({"learned", "peg", "none"},
                  "learned: a table per stage added after its patch embedding (bilinearly resized for another input "
                  "size; PVT); peg: a PEG after the first block of each stage (Twins); none"));
  b("pool", pool, KeySpec::Enum({"cls", "mean"}, "class token added in the last stage, or the mean of the last "
                                                 "stage's tokens, feeds the head"));
}

PvtOptions PvtOptions::from(const Options& model) {
  const std::string type = model.get_string("type");
  PvtOptions o = type == "twins_svt" ? twins_svt() : type == "twins_pcpvt" ? twins_pcpvt() : pvt();
  read_model_options(o, model);
  return o;
}

void check_pvt_options(const Options& m) {
  const size_t S = m.get_ints("depths").size();
  std::vector<std::string> lists = {"embed_dims", "num_heads", "mlp_ratios", "sr_ratios"};
  if (m.get_string("type") == "twins_svt") lists.push_back("window_sizes");
  for (const std::string& k : lists)
    if (m.get_ints(k).size() != S)
      m.fail(k, "has " + std::to_string(m.get_ints(k).size()) + " entries but model.depths has " + std::to_string(S) +
                    "; give one entry per stage");
  const auto &dims = m.get_ints("embed_dims"), &heads = m.get_ints("num_heads");
  for (size_t i = 0; i < S; ++i)
    if (dims[i] % heads[i] != 0)
      m.fail("num_heads", "stage " + std::to_string(i) + ": " + std::to_string(heads[i]) +
                              " heads do not divide embed_dims " + std::to_string(dims[i]));
  // The grid of every stage must be at least one token, and at least R tokens wide where R > 1.
  int64_t side = m.get_int("image_size") / m.get_int("patch_size");
  for (size_t i = 0; i < S; ++i) {
    if (i > 0) side /= 2;
    const int64_t r = m.get_ints("sr_ratios")[i];
    if (side < 1 || side < r)
      m.fail("sr_ratios", "stage " + std::to_string(i) + " has a " + std::to_string(side) + "x" +
                              std::to_string(side) + " token grid, smaller than its reduction " + std::to_string(r) +
                              "; use fewer stages, a smaller patch_size or smaller sr_ratios");
  }
}

namespace {

// Attention of q (B,NH,N,HD) over k, v (B,NH,M,HD), composed op by op: the fused kernel is
// self-attention on a packed qkv only. Returns (B,N,NH*HD).
Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, double scale, double p, bool training) {
  Tensor attn = dropout(softmax(matmul(q * scale, transpose(k, -2, -1)), -1), p, training);  // (B,NH,N,M)
  Tensor o = matmul(attn, v);                                                                   // (B,NH,N,HD)
  return permute(o, {0, 2, 1, 3}).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

// Self-attention on packed qkv (B,N,3*NH*HD) -> (B,N,NH*HD): fused unless attention dropout is on.
Tensor self_attend(const Tensor& qkv, int64_t heads, double scale, double p, bool training) {
  if (p == 0 || !training) return attention_qkv(qkv, heads, scale);
  const int64_t B = qkv.size(0), N = qkv.size(1), hd = qkv.size(2) / (3 * heads);
  std::vector<Tensor> parts = chunk(permute(qkv.reshape({B, N, 3, heads, hd}), {2, 0, 3, 1, 4}), 3, 0);
  return attend(parts[0].reshape({B, heads, N, hd}), parts[1].reshape({B, heads, N, hd}),
                parts[2].reshape({B, heads, N, hd}), scale, p, training);
}

// Twins' init of every conv: N(0, sqrt(2 / fan_out)), fan_out = K*K*O/groups, zero bias.
void init_convs_fan_out(Module& m) {
  if (auto* c = dynamic_cast<Conv2d*>(&m)) {
    const double fan_out = (double)c->weight.size(0) / c->groups * c->weight.size(2) * c->weight.size(3);
    copy_into(c->weight, normal(c->weight.shape(), 0, std::sqrt(2.0 / fan_out)));
    if (c->bias.defined()) init_constant(c->bias, 0.0);
  }
  for (auto& [name, child] : m.children()) init_convs_fan_out(*child);
}

}  // namespace

SRAttention::SRAttention(int64_t dim, int64_t heads, int64_t sr_ratio, bool qkv_bias, double attn_dropout,
                         double proj_dropout)
    : heads(heads), sr_ratio(sr_ratio), attn_dropout(attn_dropout), proj_dropout(proj_dropout) {
  q = add_module("q", std::make_shared<Linear>(dim, dim, qkv_bias));
  kv = add_module("kv", std::make_shared<Linear>(dim, 2 * dim, qkv_bias));
  proj = add_module("proj", std::make_shared<Linear>(dim, dim));
  if (sr_ratio > 1) {
    sr = add_module("sr", std::make_shared<Conv2d>(dim, dim, sr_ratio, sr_ratio));
    norm = add_module("norm", std::make_shared<LayerNorm>(dim, 1e-5));  // nn.LayerNorm's default eps in both
  }
}

Tensor SRAttention::forward(const Tensor& x) {
  const int64_t h = grid_h, w = grid_w;
  PW_CHECK(x.dim() == 3 && x.size(1) >= h * w && h > 0 && w > 0, "SRAttention: expected tokens (B, E + ", h, "*", w,
           ", D), got ", x.str());
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), hd = D / heads;
  const double scale = 1.0 / std::sqrt((double)hd);
  if (!sr) {  // keys and values from every token: packed [q | k | v] runs the fused kernel
    Tensor o = self_attend(concat({(*q)(x), (*kv)(x)}, 2), heads, scale, attn_dropout, training());
    return dropout((*proj)(o), proj_dropout, training());
  }
  PW_CHECK(N == h * w, "SRAttention: spatial reduction needs the token grid alone (", h, "x", w,
           "), but got ", N - h * w, " extra tokens; a class token belongs in a stage with sr_ratio 1");
  Tensor qh = permute((*q)(x).reshape({B, N, heads, hd}), {0, 2, 1, 3});     // (B,NH,N,HD)
  Tensor r = (*norm)(map_to_tokens((*sr)(tokens_to_map(x, h, w))));          // (B,M,D)
  const int64_t M = r.size(1);
  std::vector<Tensor> kvs = chunk(permute((*kv)(r).reshape({B, M, 2, heads, hd}), {2, 0, 3, 1, 4}), 2, 0);
  Tensor o = attend(qh, kvs[0].reshape({B, heads, M, hd}), kvs[1].reshape({B, heads, M, hd}), scale, attn_dropout,
                    training());
  return dropout((*proj)(o), proj_dropout, training());
}

LocalGroupedAttention::LocalGroupedAttention(int64_t dim, int64_t heads, int64_t ws, double attn_dropout,
                                             double proj_dropout)
    : heads(heads), ws(ws), attn_dropout(attn_dropout), proj_dropout(proj_dropout) {
  qkv = add_module("qkv", std::make_shared<Linear>(dim, 3 * dim, true));
  proj = add_module("proj", std::make_shared<Linear>(dim, dim));
}

Tensor LocalGroupedAttention::forward(const Tensor& x) {
  const int64_t h = grid_h, w = grid_w;
  PW_CHECK(x.dim() == 3 && x.size(1) == h * w, "LocalGroupedAttention: expected tokens (B, ", h, "*", w,
           ", D) (no class token), got ", x.str());
  const int64_t B = x.size(0), D = x.size(2), hd = D / heads;
  const int64_t pb = (ws - h % ws) % ws, pr = (ws - w % ws) % ws, Hp = h + pb, Wp = w + pr;
  const int64_t nh = Hp / ws, nw = Wp / ws;
  Tensor g = x.reshape({B, h, w, D});
  if (pb || pr) g = pad(g, {0, 0, 0, pr, 0, pb});  // zeros at the bottom and right
  // (B,Hp,Wp,D) -> windows (B*nh*nw, ws*ws, D)
  Tensor win = permute(g.reshape({B, nh, ws, nw, ws, D}), {0, 1, 3, 2, 4, 5}).reshape({B * nh * nw, ws * ws, D});
  Tensor o = self_attend((*qkv)(win), heads, 1.0 / std::sqrt((double)hd), attn_dropout, training());
  o = permute(o.reshape({B, nh, nw, ws, ws, D}), {0, 1, 3, 2, 4, 5}).reshape({B, Hp, Wp, D});
  if (pb || pr) o = narrow(narrow(o, 1, 0, h), 2, 0, w);
  return dropout((*proj)(o.reshape({B, h * w, D})), proj_dropout, training());
}

PyramidBlock::PyramidBlock(int64_t dim, std::shared_ptr<GridModule> a, int64_t mlp_dim, double dropout,
                           double drop_path_p) {
  norm1 = add_module("norm1", std::make_shared<LayerNorm>(dim, 1e-6));
  attn = add_module("attn", std::move(a));
  norm2 = add_module("norm2", std::make_shared<LayerNorm>(dim, 1e-6));
  mlp = add_module("mlp", std::make_shared<FeedForward>(dim, mlp_dim, dropout));
  drop_path = add_module("drop_path", std::make_shared<DropPath>(drop_path_p));
}

Tensor PyramidBlock::forward(const Tensor& x) {
  Tensor y = x + (*drop_path)(attn->run((*norm1)(x), grid_h, grid_w));
  return y + (*drop_path)((*mlp)((*norm2)(y)));
}

PyramidPatchEmbed::PyramidPatchEmbed(int64_t cin, int64_t dim, int64_t patch) : patch(patch) {
  proj = add_module("proj", std::make_shared<Conv2d>(cin, dim, patch, patch));
  norm = add_module("norm", std::make_shared<LayerNorm>(dim, 1e-5));
}

Tensor PyramidPatchEmbed::forward(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(2) >= patch && img.size(3) >= patch, "PyramidPatchEmbed: expected a map (B,C,H,W)",
           " at least ", patch, "x", patch, ", got ", img.str());
  return (*norm)(map_to_tokens((*proj)(img)));
}

PyramidTransformer::PyramidTransformer(const PvtOptions& o) : opt(o) {
  const size_t S = o.depths.size();
  PW_CHECK(S >= 1 && o.embed_dims.size() == S && o.num_heads.size() == S && o.mlp_ratios.size() == S &&
               o.sr_ratios.size() == S && (o.variant != "twins_svt" || o.window_sizes.size() == S),
           "PyramidTransformer: depths, embed_dims, num_heads, mlp_ratios, sr_ratios (and window_sizes) need one entry "
           "per stage");
  const bool twins = o.variant != "pvt";
  const bool cls = o.pool == "cls";
  int64_t total = 0;
  for (int64_t d : o.depths) total += d;
  int64_t side = o.image_size / o.patch_size, cin = o.channels, k = 0;
  blocks.resize(S);
  for (size_t s = 0; s < S; ++s) {
    if (s > 0) side /= 2;
    const int64_t D = o.embed_dims[s], p = s == 0 ? o.patch_size : 2;
    const std::string si = std::to_string(s), s1 = std::to_string(s + 1);
    patch_embeds.push_back(add_module(twins ? "patch_embeds." + si : "patch_embed" + s1,
                                      std::make_shared<PyramidPatchEmbed>(cin, D, p)));
    cin = D;
    if (o.pos_embed == "learned") {
      const bool with_cls = cls && s + 1 == S;
      Tensor pe = add_param(twins ? "pos_embeds." + si : "pos_embed" + s1,
                            zeros({1, side * side + (with_cls ? 1 : 0), D}), /*decay=*/false);
      init_trunc_normal(pe, 0.02);
      pos_embeds.push_back(pe);
      pos_sides.push_back(side);
    }
    for (int64_t j = 0; j < o.depths[s]; ++j, ++k) {
      const double dp = total > 1 ? o.drop_path * k / (total - 1) : o.drop_path;
      std::shared_ptr<GridModule> a;
      if (o.variant == "twins_svt" && j % 2 == 0)
        a = std::make_shared<LocalGroupedAttention>(D, o.num_heads[s], o.window_sizes[s], o.attn_dropout, o.dropout);
      else
        a = std::make_shared<SRAttention>(D, o.num_heads[s], o.sr_ratios[s], twins || o.qkv_bias, o.attn_dropout,
                                          o.dropout);
      const std::string name = twins ? "blocks." + si + "." + std::to_string(j) : "block" + s1 + "." + std::to_string(j);
      blocks[s].push_back(
          add_module(name, std::make_shared<PyramidBlock>(D, a, D * o.mlp_ratios[s], o.dropout, dp)));
    }
  }
  if (o.pos_embed == "peg")
    for (size_t s = 0; s < S; ++s)
      pegs.push_back(add_module("pos_block." + std::to_string(s), std::make_shared<PEG>(o.embed_dims[s])));
  const int64_t Dl = o.embed_dims.back();
  norm = add_module("norm", std::make_shared<LayerNorm>(Dl, 1e-6));
  if (cls) {
    cls_token = add_param("cls_token", zeros({1, 1, Dl}), /*decay=*/false);
    init_trunc_normal(cls_token, 0.02);
  }
  head = add_module("head", std::make_shared<Linear>(Dl, o.num_classes));
  if (twins) init_convs_fan_out(*this);  // timm's Twins._init_weights; PVT v1 keeps PyTorch's conv init
}

Tensor PyramidTransformer::forward(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(1) == opt.channels, "PyramidTransformer (", opt.variant,
           "): expected images (B,", opt.channels, ",H,W), got ", img.str());
  const size_t S = blocks.size();
  const int64_t B = img.size(0);
  last_stage_shapes.clear();
  Tensor x = img;  // a map (B,C,H,W) between stages
  for (size_t s = 0; s < S; ++s) {
    Tensor t = (*patch_embeds[s])(x);  // (B, h*w, D)
    const int64_t h = x.size(2) / patch_embeds[s]->patch, w = x.size(3) / patch_embeds[s]->patch, D = t.size(2);
    const bool last = s + 1 == S;
    if (last && cls_token.defined()) t = concat({expand(cls_token, {B, 1, D}), t}, 1);
    if (!pos_embeds.empty()) {
      Tensor pe = pos_embeds[s];  // (1, E + side*side, D)
      const int64_t side = pos_sides[s], E = pe.size(1) - side * side;
      if (h != side || w != side) {  // PVT's _get_pos_embed: bilinear, align_corners=False
        Tensor grid = map_to_tokens(interpolate_bilinear(tokens_to_map(narrow(pe, 1, E, side * side), side, side), h, w));
        pe = E ? concat({narrow(pe, 1, 0, E), grid}, 1) : grid;
      }
      t = t + pe;
    }
    t = dropout(t, opt.dropout, training());
    for (size_t j = 0; j < blocks[s].size(); ++j) {
      t = blocks[s][j]->run(t, h, w);
      if (j == 0 && !pegs.empty()) t = pegs[s]->run(t, h, w);
    }
    last_stage_shapes.push_back(t.shape());
    if (!last) x = tokens_to_map(t, h, w);
    else x = t;
  }
  x = (*norm)(x);  // (B, E + h*w, D)
  const int64_t D = x.size(2);
  x = cls_token.defined() ? narrow(x, 1, 0, 1).reshape({B, D}) : mean(x, {1});
  return (*head)(x);
}

namespace {
std::shared_ptr<Module> make(const Options& model) {
  return std::make_shared<PyramidTransformer>(PvtOptions::from(model));
}
}  // namespace

PW_REGISTER_MODEL({"pvt",
                   "PVT v1 (Wang et al. 2021): pyramid stages, spatial-reduction attention, learned positions per "
                   "stage, class token in the last stage; defaults PVT-Tiny",
                   declare_model_keys(PvtOptions::pvt(), check_pvt_options), make});
PW_REGISTER_MODEL({"twins_pcpvt",
                   "Twins-PCPVT (Chu et al. 2021): PVT with a PEG after each stage's first block, mean pooling; "
                   "defaults Twins-PCPVT-S",
                   declare_model_keys(PvtOptions::twins_pcpvt(), check_pvt_options), make});
PW_REGISTER_MODEL({"twins_svt",
                   "Twins-SVT (Chu et al. 2021): alternating locally-grouped (windows) and global sub-sampled "
                   "attention, PEG after each stage's first block; defaults Twins-SVT-S",
                   declare_model_keys(PvtOptions::twins_svt(), check_pvt_options), make});

}  // namespace pw
