#include "nn/swin.h"

#include <algorithm>
#include <cmath>

#include "nn/posenc.h"

namespace pw {

void SwinOptions::bind(KeyBinder& b) {
  b("patch_size", patch_size, KeySpec::Int("patch partition: P x P pixels per token; divides image_size").ge(1));
  b("embed_dim", embed_dim, KeySpec::Int("channels C of the first stage (doubled by every patch merging)").ge(1));
  b("depths", depths, KeySpec::Ints("Swin blocks per stage (Swin-T: [2, 2, 6, 2])").ge(1));
  b("heads", heads, KeySpec::Ints("attention heads per stage; stage i's width C*2^i divides by it").ge(1));
  b("window_size", window_size, KeySpec::Int("window side M (Swin: 7); maps no larger than M get one window").ge(1));
  b("mlp_ratio", mlp_ratio, KeySpec::Float("hidden width of each MLP / C").gt(0));
  b("qkv_bias", qkv_bias, KeySpec::Bool("bias in the query/key/value projection"));
  b("dropout", dropout, KeySpec::Float("dropout after attention and MLP projections").ge(0).lt(1));
  b("drop_path", drop_path,
    KeySpec::Float("stochastic depth rate of the last block, linear from 0 over all blocks (Swin-T: 0.2)").ge(0).lt(1));
}

SwinOptions SwinOptions::from(const Options& model) {
  SwinOptions o;
  read_model_options(o, model);
  return o;
}

void check_swin_options(const Options& m) {
  const int64_t image = m.get_int("image_size"), patch = m.get_int("patch_size"), dim = m.get_int("embed_dim");
  if (image % patch != 0)
    m.fail("patch_size", std::to_string(patch) + " does not divide model.image_size " + std::to_string(image) +
                             "; pick a divisor of it");
  const auto& depths = m.get_ints("depths");
  const auto& heads = m.get_ints("heads");
  if (depths.empty()) m.fail("depths", "needs at least one stage, e.g. [2, 2, 6, 2]");
  if (heads.size() != depths.size())
    m.fail("heads", "has " + std::to_string(heads.size()) + " entries but model.depths has " +
                        std::to_string(depths.size()) + "; give one head count per stage");
  for (size_t i = 0; i < heads.size(); ++i) {
    const int64_t c = dim << i;
    if (c % heads[i] != 0)
      m.fail("heads", "stage " + std::to_string(i) + " has width " + std::to_string(c) + " (embed_dim * 2^" +
                          std::to_string(i) + "), not divisible by its " + std::to_string(heads[i]) + " heads");
  }
}

std::vector<double> swin_shift_mask(int64_t Hp, int64_t Wp, int64_t M, int64_t s, double masked) {
  PW_CHECK(Hp % M == 0 && Wp % M == 0 && s > 0 && s < M, "swin_shift_mask: the map ", Hp, "x", Wp,
           " must be a multiple of the window ", M, " and the shift ", s, " in (0, M)");
  // region of a row (column) p of the rolled map of side n: [0, n-M) -> 0, [n-M, n-s) -> 1, [n-s, n) -> 2
  auto region = [M, s](int64_t p, int64_t n) { return p < n - M ? 0 : (p < n - s ? 1 : 2); };
  const int64_t nh = Hp / M, nw = Wp / M, N = M * M;
  std::vector<double> mask(nh * nw * N * N, 0.0);
  for (int64_t wi = 0; wi < nh; ++wi)
    for (int64_t wj = 0; wj < nw; ++wj) {
      double* m = &mask[(wi * nw + wj) * N * N];
      for (int64_t a = 0; a < N; ++a)
        for (int64_t b = 0; b < N; ++b) {
          const int64_t ra = region(wi * M + a / M, Hp) * 3 + region(wj * M + a % M, Wp);
          const int64_t rb = region(wi * M + b / M, Hp) * 3 + region(wj * M + b % M, Wp);
          m[a * N + b] = ra == rb ? 0.0 : masked;
        }
    }
  return mask;
}

Tensor window_partition(const Tensor& x, int64_t M) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  PW_CHECK(H % M == 0 && W % M == 0, "window_partition: the map ", x.str(), " is not a multiple of the window ", M);
  // (B, H/M, M, W/M, M, C) -> (B, H/M, W/M, M, M, C)
  return permute(x.reshape({B, H / M, M, W / M, M, C}), {0, 1, 3, 2, 4, 5})
      .reshape({B * (H / M) * (W / M), M * M, C});
}

Tensor window_reverse(const Tensor& w, int64_t M, int64_t H, int64_t W) {
  const int64_t C = w.size(2), B = w.size(0) / ((H / M) * (W / M));
  return permute(w.reshape({B, H / M, W / M, M, M, C}), {0, 1, 3, 2, 4, 5}).reshape({B, H, W, C});
}

WindowAttention::WindowAttention(int64_t dim, int64_t heads, int64_t window, bool qkv_bias, double proj_dropout)
    : heads(heads), window(window), proj_dropout(proj_dropout) {
  qkv = add_module("qkv", std::make_shared<Linear>(dim, 3 * dim, qkv_bias));
  proj = add_module("proj", std::make_shared<Linear>(dim, dim));
  const int64_t T = (2 * window - 1) * (2 * window - 1);
  relative_position_bias_table = add_param("relative_position_bias_table", zeros({T, heads}), /*decay=*/false);
  init_trunc_normal(relative_position_bias_table, 0.02);
  // timm's relative_position_index: (dr + M-1) * (2M-1) + (dc + M-1) for token pairs in raster order
  index = RelIndex::build(swin_relative_index(window, window), window * window, T);
  add_constant("relative_position_index", index.idx);  // fixed; not state (timm: persistent=False)
  add_constant("relative_position_index_inv_off", index.inv_off);
  add_constant("relative_position_index_inv_pos", index.inv_pos);
}

Tensor WindowAttention::relative_position_bias() { return rel_bias_gather(relative_position_bias_table, index); }

void WindowAttention::set_mask(Tensor m) { mask = add_constant("attn_mask", std::move(m)); }

Tensor WindowAttention::forward(const Tensor& x) {
  PW_CHECK(x.dim() == 3 && x.size(1) == window * window, "WindowAttention: expected windows (B*nW, ",
           window * window, ", C), got ", x.str());
  const int64_t Bw = x.size(0), N = x.size(1), C = x.size(2);
  Tensor bias = relative_position_bias();  // (NH,N,N)
  if (bias.dtype() != x.dtype()) bias = bias.to(x.dtype());
  if (mask.defined()) {
    const int64_t nW = mask.size(0);
    PW_CHECK(Bw % nW == 0, "WindowAttention: ", Bw, " windows are not a multiple of the mask's ", nW);
    Tensor m = mask.dtype() == x.dtype() ? mask : mask.to(x.dtype());
    bias = unsqueeze(m, 1) + bias;  // (nW,NH,N,N): the mask is shared by the heads
    // windows are image-major (b*nW + w): the same nW biases for every image
    if (Bw > nW) bias = expand(unsqueeze(bias, 0), {Bw / nW, nW, heads, N, N}).reshape({Bw, heads, N, N});
  }
  const double scale = 1.0 / std::sqrt((double)(C / heads));
  Tensor y = attention_qkv_bias((*qkv)(x), bias, heads, scale);  // (B*nW,N,C)
  return dropout((*proj)(y), proj_dropout, training());
}

SwinBlock::SwinBlock(int64_t dim, int64_t H, int64_t W, int64_t heads, int64_t window_, bool shifted,
                     double mlp_ratio, bool qkv_bias, double dropout, double drop_path_p)
    : H(H), W(W) {
  // the reference: a map no larger than the window is one window, unshifted
  window = window_;
  shift = shifted ? window_ / 2 : 0;
  if (std::min(H, W) <= window_) {
    window = std::min(H, W);
    shift = 0;
  }
  Hp = (H + window - 1) / window * window;
  Wp = (W + window - 1) / window * window;
  norm1 = add_module("norm1", std::make_shared<LayerNorm>(dim));
  attn = add_module("attn", std::make_shared<WindowAttention>(dim, heads, window, qkv_bias, dropout));
  norm2 = add_module("norm2", std::make_shared<LayerNorm>(dim));
  mlp = add_module("mlp", std::make_shared<FeedForward>(dim, (int64_t)(dim * mlp_ratio), dropout));
  drop_path = add_module("drop_path", std::make_shared<DropPath>(drop_path_p));
  if (shift > 0) {
    const int64_t nW = (Hp / window) * (Wp / window), N = window * window;
    attn->set_mask(from_vector(swin_shift_mask(Hp, Wp, window, shift), {nW, N, N}));
    attn_mask = attn->mask;
  }
}

Tensor SwinBlock::forward(const Tensor& x) {
  PW_CHECK(x.dim() == 4 && x.size(1) == H && x.size(2) == W, "SwinBlock: expected (B,", H, ",", W, ",C), got ",
           x.str());
  Tensor h = (*norm1)(x);
  if (Hp != H || Wp != W) h = pad(h, {0, 0, 0, Wp - W, 0, Hp - H});  // zeros at the bottom/right
  if (shift > 0) h = roll(h, {-shift, -shift}, {1, 2});
  Tensor wins = (*attn)(window_partition(h, window));  // (B*nW,N,C)
  h = window_reverse(wins, window, Hp, Wp);
  if (shift > 0) h = roll(h, {shift, shift}, {1, 2});
  if (Hp != H) h = narrow(h, 1, 0, H);
  if (Wp != W) h = narrow(h, 2, 0, W);
  Tensor y = x + (*drop_path)(h);
  return y + (*drop_path)((*mlp)((*norm2)(y)));
}

PatchMerging::PatchMerging(int64_t dim) {
  norm = add_module("norm", std::make_shared<LayerNorm>(4 * dim));
  reduction = add_module("reduction", std::make_shared<Linear>(4 * dim, 2 * dim, /*bias=*/false));
}

Tensor PatchMerging::forward(const Tensor& x) {
  PW_CHECK(x.dim() == 4, "PatchMerging: expected (B,H,W,C), got ", x.str());
  Tensor h = x;
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  if (H % 2 || W % 2) h = pad(h, {0, 0, 0, W % 2, 0, H % 2});
  const int64_t H2 = (H + 1) / 2, W2 = (W + 1) / 2;
  // (B, H2, dh, W2, dw, C) -> (B, H2, W2, dw, dh, C): the reference's x0, x1, x2, x3 order
  h = permute(h.reshape({B, H2, 2, W2, 2, C}), {0, 1, 3, 4, 2, 5}).reshape({B, H2, W2, 4 * C});
  return (*reduction)((*norm)(h));
}

SwinStage::SwinStage(int64_t dim, int64_t res, bool merge, int64_t heads, int64_t window, double mlp_ratio,
                     bool qkv_bias, double dropout, const std::vector<double>& drop_paths) {
  if (merge) {
    downsample = add_module("downsample", std::make_shared<PatchMerging>(dim));
    dim *= 2;
    res = (res + 1) / 2;
  }
  for (size_t j = 0; j < drop_paths.size(); ++j)
    blocks.push_back(add_module("blocks." + std::to_string(j),
                                std::make_shared<SwinBlock>(dim, res, res, heads, window, j % 2 == 1, mlp_ratio,
                                                            qkv_bias, dropout, drop_paths[j])));
}

Tensor SwinStage::forward(const Tensor& x) {
  Tensor h = downsample ? (*downsample)(x) : x;
  for (auto& b : blocks) h = (*b)(h);
  return h;
}

SwinTransformer::SwinTransformer(const SwinOptions& o) : opt(o) {
  PW_CHECK(o.heads.size() == o.depths.size() && !o.depths.empty(), "SwinTransformer: model.depths and model.heads "
           "need one entry per stage, got ", o.depths.size(), " and ", o.heads.size());
  patch_proj = add_module("patch_embed.proj",
                          std::make_shared<Conv2d>(o.channels, o.embed_dim, o.patch_size, o.patch_size));
  patch_norm = add_module("patch_embed.norm", std::make_shared<LayerNorm>(o.embed_dim));
  int64_t total = 0;
  for (int64_t d : o.depths) total += d;
  int64_t res = o.image_size / o.patch_size, dim = o.embed_dim, k = 0;
  for (size_t i = 0; i < o.depths.size(); ++i) {
    std::vector<double> dps;
    for (int64_t j = 0; j < o.depths[i]; ++j, ++k)
      dps.push_back(total > 1 ? o.drop_path * k / (total - 1) : 0.0);  // torch.linspace(0, rate, total)
    layers.push_back(add_module("layers." + std::to_string(i),
                                std::make_shared<SwinStage>(dim, res, i > 0, o.heads[i], o.window_size, o.mlp_ratio,
                                                            o.qkv_bias, o.dropout, dps)));
    if (i > 0) {
      dim *= 2;
      res = (res + 1) / 2;
    }
  }
  norm = add_module("norm", std::make_shared<LayerNorm>(dim));
  head = add_module("head.fc", std::make_shared<Linear>(dim, o.num_classes));
}

Tensor SwinTransformer::embed(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(1) == opt.channels && img.size(2) == opt.image_size &&
               img.size(3) == opt.image_size,
           "SwinTransformer: expected images (B,", opt.channels, ",", opt.image_size, ",", opt.image_size, "), got ",
           img.str(), "; check data.resize/crop_size against model.image_size");
  Tensor y = (*patch_proj)(img);                    // (B,C,h,w)
  return (*patch_norm)(permute(y, {0, 2, 3, 1}));  // (B,h,w,C)
}

Tensor SwinTransformer::forward(const Tensor& img) {
  Tensor x = embed(img);
  for (auto& s : layers) x = (*s)(x);
  x = (*norm)(x);                   // (B,h,w,C)
  return (*head)(mean(x, {1, 2}));  // global average pool, then the classifier
}

namespace {
std::shared_ptr<Module> make(const Options& model) {
  return std::make_shared<SwinTransformer>(SwinOptions::from(model));
}
}  // namespace

PW_REGISTER_MODEL({"swin",
                   "Swin Transformer (Liu et al. 2021): shifted-window attention with relative position bias, "
                   "patch merging between stages; timm's parameter names",
                   declare_model_keys(SwinOptions{}, check_swin_options),
                   make});

}  // namespace pw
