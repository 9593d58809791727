#include "nn/localvit.h"

namespace pw {

void LocalVitOptions::bind(KeyBinder& b) {
  b("patch_size", patch_size, KeySpec::Int("patch height and width in pixels; divides image_size").ge(1));
  b("dim", dim, KeySpec::Int("token width D").ge(1));
  b("depth", depth, KeySpec::Int("number of blocks").ge(1));
  b("heads", heads, KeySpec::Int("attention heads (head width dim/heads; LocalViT-T: 4)").ge(1));
  b("mlp_ratio", mlp_ratio, KeySpec::Float("hidden channels of the convolutional feed-forward / dim").gt(0));
  b("qkv_bias", qkv_bias, KeySpec::Bool("bias in the query/key/value projection"));
  b("se_reduction", se_reduction,
    KeySpec::Int("SE block after the depthwise conv, hidden = hidden channels / this (LocalViT-T: 192); 0: no SE")
        .ge(0));
  b("dropout", dropout, KeySpec::Float("dropout on the embeddings and after the attention projection").ge(0).lt(1));
  b("drop_path", drop_path,
    KeySpec::Float("stochastic depth rate of the last block's attention, linear from 0 (DeiT: 0.1)").ge(0).lt(1));
}

LocalVitOptions LocalVitOptions::from(const Options& model) {
  LocalVitOptions o;
  read_model_options(o, model);
  return o;
}

void check_localvit_options(const Options& m) {
  const int64_t image = m.get_int("image_size"), patch = m.get_int("patch_size");
  if (image % patch != 0)
    m.fail("patch_size", std::to_string(patch) + " does not divide model.image_size " + std::to_string(image) +
                             "; pick a divisor of it");
  if (m.get_int("dim") % m.get_int("heads") != 0)
    m.fail("heads", "model.dim " + std::to_string(m.get_int("dim")) + " is not divisible by " +
                        std::to_string(m.get_int("heads")) + " heads");
  const int64_t hidden = (int64_t)(m.get_int("dim") * m.get_float("mlp_ratio")), r = m.get_int("se_reduction");
  if (r > 0 && hidden / r < 1)
    m.fail("se_reduction", std::to_string(r) + " leaves no SE hidden unit for " + std::to_string(hidden) +
                               " channels; use at most " + std::to_string(hidden) + " (or 0: no SE)");
}

SqueezeExcite::SqueezeExcite(int64_t c, int64_t reduction) {
  fc1 = add_module("fc.0", std::make_shared<Linear>(c, c / reduction));
  fc2 = add_module("fc.2", std::make_shared<Linear>(c / reduction, c));
}
Tensor SqueezeExcite::forward(const Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1);
  Tensor y = (*fc2)(relu((*fc1)(global_avg_pool2d(x))));  // (B,C)
  y = clamp(y + 3.0, 0.0, 6.0) / 6.0;                      // h_sigmoid: relu6(x + 3) / 6
  return x * y.reshape({B, C, 1, 1});
}

LocalityFeedForward::LocalityFeedForward(int64_t dim, int64_t hidden, int64_t se_reduction) {
  pw_in = add_module("conv.0", std::make_shared<Conv2d>(dim, hidden, 1, 1, 0, 1, /*bias=*/false));
  bn1 = add_module("conv.1", std::make_shared<BatchNorm>(hidden));
  depthwise = add_module("conv.3", std::make_shared<Conv2d>(hidden, hidden, 3, 1, 1, hidden, /*bias=*/false));
  bn2 = add_module("conv.4", std::make_shared<BatchNorm>(hidden));
  int64_t k = 6;  // the index of the next layer in the official nn.Sequential
  if (se_reduction > 0) se = add_module("conv." + std::to_string(k++), std::make_shared<SqueezeExcite>(hidden, se_reduction));
  pw_out = add_module("conv." + std::to_string(k++), std::make_shared<Conv2d>(hidden, dim, 1, 1, 0, 1, false));
  bn3 = add_module("conv." + std::to_string(k), std::make_shared<BatchNorm>(dim));
}
Tensor LocalityFeedForward::forward(const Tensor& x) {
  Tensor h = hardswish((*bn1)((*pw_in)(x)));
  h = hardswish((*bn2)((*depthwise)(h)));
  if (se) h = (*se)(h);
  return x + (*bn3)((*pw_out)(h));
}

LocalVitBlock::LocalVitBlock(const LocalVitOptions& o, int64_t side, double dp) : side(side) {
  norm1 = add_module("norm1", std::make_shared<LayerNorm>(o.dim, 1e-6));
  attn = add_module("attn", std::make_shared<Attention>(o.dim, o.heads, o.dim / o.heads, o.qkv_bias, 0.0, o.dropout));
  drop_path = add_module("drop_path", std::make_shared<DropPath>(dp));
  conv = add_module("conv", std::make_shared<LocalityFeedForward>(o.dim, (int64_t)(o.dim * o.mlp_ratio), o.se_reduction));
}
Tensor LocalVitBlock::forward(const Tensor& x) {
  const int64_t B = x.size(0), D = x.size(2), N = side * side;
  PW_CHECK(x.dim() == 3 && x.size(1) == N + 1, "LocalVitBlock: expected (B,", N + 1, ",D), got ", x.str());
  Tensor y = x + (*drop_path)((*attn)((*norm1)(x)));
  Tensor grid = transpose(narrow(y, 1, 1, N), 1, 2).reshape({B, D, side, side});  // (B,D,h,w)
  Tensor t = transpose((*conv)(grid).reshape({B, D, N}), 1, 2);                   // (B,N,D)
  return concat({narrow(y, 1, 0, 1), t}, 1);
}

LocalVisionTransformer::LocalVisionTransformer(const LocalVitOptions& o) : opt(o) {
  const int64_t side = o.image_size / o.patch_size;
  patch_proj = add_module("patch_embed.proj", std::make_shared<Conv2d>(o.channels, o.dim, o.patch_size, o.patch_size));
  cls_token = add_param("cls_token", zeros({1, 1, o.dim}), /*decay=*/false);
  init_trunc_normal(cls_token, 0.02);
  pos_embed = add_param("pos_embed", zeros({1, side * side + 1, o.dim}), /*decay=*/false);
  init_trunc_normal(pos_embed, 0.02);
  for (int64_t i = 0; i < o.depth; ++i) {
    const double dp = o.depth > 1 ? o.drop_path * i / (o.depth - 1) : 0.0;  // torch.linspace(0, rate, depth)
    blocks.push_back(add_module("blocks." + std::to_string(i), std::make_shared<LocalVitBlock>(o, side, dp)));
  }
  norm = add_module("norm", std::make_shared<LayerNorm>(o.dim, 1e-6));
  head = add_module("head", std::make_shared<Linear>(o.dim, o.num_classes));
}

Tensor LocalVisionTransformer::forward(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(1) == opt.channels && img.size(2) == opt.image_size &&
               img.size(3) == opt.image_size,
           "LocalViT: expected images (B,", opt.channels, ",", opt.image_size, ",", opt.image_size, "), got ",
           img.str(), "; check data.resize/crop_size against model.image_size");
  Tensor y = (*patch_proj)(img);  // (B,D,h,w)
  const int64_t B = y.size(0), D = y.size(1);
  Tensor x = transpose(y.reshape({B, D, y.size(2) * y.size(3)}), 1, 2);  // (B,N,D)
  x = concat({expand(cls_token, {B, 1, D}), x}, 1) + pos_embed;
  x = dropout(x, opt.dropout, training());
  for (auto& b : blocks) x = (*b)(x);
  x = (*norm)(x);
  return (*head)(narrow(x, 1, 0, 1).reshape({B, D}));
}

namespace {
std::shared_ptr<Module> make(const Options& model) {
  return std::make_shared<LocalVisionTransformer>(LocalVitOptions::from(model));
}
}  // namespace

PW_REGISTER_MODEL({"localvit",
                   "LocalViT (Li et al. 2021): DeiT with a convolutional feed-forward on the token grid "
                   "(1x1, depthwise 3x3, Hardswish, SE, 1x1, BatchNorm); official parameter names",
                   declare_model_keys(LocalVitOptions{}, check_localvit_options),
                   make});

}  // namespace pw
