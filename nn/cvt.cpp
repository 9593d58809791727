#include "nn/cvt.h"

#include <cmath>

namespace pw {

void CvtOptions::bind(KeyBinder& b) {
  b("dims", dims, KeySpec::Ints("token width per stage (CvT-13: [64, 192, 384])").ge(1));
  b("depths", depths, KeySpec::Ints("transformer blocks per stage (CvT-13: [1, 2, 10])").ge(1));
  b("heads", heads, KeySpec::Ints("attention heads per stage; divides that stage's width").ge(1));
  b("patch_sizes", patch_sizes, KeySpec::Ints("kernel of each stage's token-embedding conv").ge(1));
  b("patch_strides", patch_strides, KeySpec::Ints("stride of each stage's token-embedding conv").ge(1));
  b("patch_paddings", patch_paddings, KeySpec::Ints("padding of each stage's token-embedding conv").ge(0));
  b("mlp_ratio", mlp_ratio, KeySpec::Float("hidden width of each MLP / stage width").gt(0));
  b("qkv_bias", qkv_bias, KeySpec::Bool("bias in the pointwise q/k/v projections"));
  b("kernel_qkv", kernel_qkv, KeySpec::Int("kernel of the depthwise q/k/v convs (odd; padding kernel/2)").ge(1));
  b("stride_kv", stride_kv, KeySpec::Int("stride of the key/value depthwise convs (CvT: 2)").ge(1));
  b("dropout", dropout, KeySpec::Float("dropout after the token embedding, attention and MLP projections").ge(0).lt(1));
  b("attn_dropout", attn_dropout, KeySpec::Float("dropout on attention weights").ge(0).lt(1));
  b("drop_path", drop_path,
    KeySpec::Floats("stochastic depth per stage: the rate of its last block, linear from 0 within the stage "
                    "(CvT-13: [0, 0, 0.1])")
        .ge(0)
        .lt(1));
}

CvtOptions CvtOptions::from(const Options& model) {
  CvtOptions o;
  read_model_options(o, model);
  return o;
}

void check_cvt_options(const Options& m) {
  const size_t n = m.get_ints("dims").size();
  if (n == 0) m.fail("dims", "needs at least one stage, e.g. [64, 192, 384]");
  for (const char* k : {"depths", "heads", "patch_sizes", "patch_strides", "patch_paddings"})
    if (m.get_ints(k).size() != n)
      m.fail(k, "has " + std::to_string(m.get_ints(k).size()) + " entries but model.dims has " + std::to_string(n) +
                    "; give one per stage");
  if (m.get_floats("drop_path").size() != n)
    m.fail("drop_path", "has " + std::to_string(m.get_floats("drop_path").size()) + " entries but model.dims has " +
                            std::to_string(n) + "; give one per stage");
  for (size_t i = 0; i < n; ++i)
    if (m.get_ints("dims")[i] % m.get_ints("heads")[i] != 0)
      m.fail("heads", "stage " + std::to_string(i) + " width " + std::to_string(m.get_ints("dims")[i]) +
                          " is not divisible by its " + std::to_string(m.get_ints("heads")[i]) + " heads");
  if (m.get_int("kernel_qkv") % 2 == 0)
    m.fail("kernel_qkv", "must be odd (padding kernel/2 keeps the query grid), got " +
                             std::to_string(m.get_int("kernel_qkv")));
  int64_t res = m.get_int("image_size");
  for (size_t i = 0; i < n; ++i) {
    res = (res + 2 * m.get_ints("patch_paddings")[i] - m.get_ints("patch_sizes")[i]) / m.get_ints("patch_strides")[i] + 1;
    if (res < 1)
      m.fail("patch_sizes", "stage " + std::to_string(i) + " would have no tokens for model.image_size " +
                                std::to_string(m.get_int("image_size")));
  }
}

ConvEmbed::ConvEmbed(int64_t cin, int64_t dim, int64_t k, int64_t stride, int64_t padding) {
  proj = add_module("proj", std::make_shared<Conv2d>(cin, dim, k, stride, padding));
  norm = add_module("norm", std::make_shared<LayerNorm>(dim));
}
Tensor ConvEmbed::forward(const Tensor& x) {
  Tensor y = (*proj)(x);  // (B,D,H,W)
  const int64_t B = y.size(0), D = y.size(1);
  return (*norm)(transpose(y.reshape({B, D, y.size(2) * y.size(3)}), 1, 2));  // (B,HW,D)
}

ConvProjection::ConvProjection(int64_t dim, int64_t k, int64_t stride) {
  conv = add_module("conv", std::make_shared<Conv2d>(dim, dim, k, stride, k / 2, /*groups=*/dim, /*bias=*/false));
  bn = add_module("bn", std::make_shared<BatchNorm>(dim));
}
Tensor ConvProjection::forward(const Tensor& x) {
  Tensor y = (*bn)((*conv)(x));  // (B,D,H',W')
  const int64_t B = y.size(0), D = y.size(1);
  return transpose(y.reshape({B, D, y.size(2) * y.size(3)}), 1, 2);  // (B,H'W',D)
}

CvtAttention::CvtAttention(int64_t dim, int64_t heads, int64_t h, int64_t w, bool cls, const CvtOptions& o)
    : heads(heads), h(h), w(w), cls(cls), attn_dropout(o.attn_dropout), proj_dropout(o.dropout) {
  scale = 1.0 / std::sqrt((double)dim);  // the official code: dim_out ** -0.5
  conv_proj_q = add_module("conv_proj_q", std::make_shared<ConvProjection>(dim, o.kernel_qkv, 1));
  conv_proj_k = add_module("conv_proj_k", std::make_shared<ConvProjection>(dim, o.kernel_qkv, o.stride_kv));
  conv_proj_v = add_module("conv_proj_v", std::make_shared<ConvProjection>(dim, o.kernel_qkv, o.stride_kv));
  proj_q = add_module("proj_q", std::make_shared<Linear>(dim, dim, o.qkv_bias));
  proj_k = add_module("proj_k", std::make_shared<Linear>(dim, dim, o.qkv_bias));
  proj_v = add_module("proj_v", std::make_shared<Linear>(dim, dim, o.qkv_bias));
  proj = add_module("proj", std::make_shared<Linear>(dim, dim));
}

Tensor CvtAttention::forward(const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), HD = D / heads;
  PW_CHECK(x.dim() == 3 && T == h * w + (cls ? 1 : 0), "CvtAttention: expected tokens (B,", h * w + (cls ? 1 : 0),
           ",D), got ", x.str());
  Tensor tok = cls ? narrow(x, 1, 1, h * w) : x;
  Tensor grid = transpose(tok, 1, 2).reshape({B, D, h, w});
  Tensor q = (*conv_proj_q)(grid), k = (*conv_proj_k)(grid), v = (*conv_proj_v)(grid);  // (B,T',D)
  if (cls) {
    Tensor c = narrow(x, 1, 0, 1);
    q = concat({c, q}, 1);
    k = concat({c, k}, 1);
    v = concat({c, v}, 1);
  }
  auto split = [&](const Tensor& t) {  // (B,T',D) -> (B,NH,T',HD)
    return permute(t.reshape({B, t.size(1), heads, HD}), {0, 2, 1, 3});
  };
  Tensor qh = split((*proj_q)(q)), kh = split((*proj_k)(k)), vh = split((*proj_v)(v));
  Tensor attn = softmax(matmul(qh, transpose(kh, 2, 3)) * scale, -1);  // (B,NH,Tq,Tkv)
  attn = dropout(attn, attn_dropout, training());
  Tensor o = permute(matmul(attn, vh), {0, 2, 1, 3}).reshape({B, qh.size(2), D});
  return dropout((*proj)(o), proj_dropout, training());
}

CvtMlp::CvtMlp(int64_t dim, int64_t hidden, double dropout) : dropout(dropout) {
  fc1 = add_module("fc1", std::make_shared<Linear>(dim, hidden));
  fc2 = add_module("fc2", std::make_shared<Linear>(hidden, dim));
}
Tensor CvtMlp::forward(const Tensor& x) {
  Tensor h = (*fc1)(x);
  h = pw::dropout(h * sigmoid(h * 1.702), dropout, training());  // QuickGELU
  return pw::dropout((*fc2)(h), dropout, training());
}

CvtBlock::CvtBlock(int64_t dim, int64_t heads, int64_t h, int64_t w, bool cls, double dp, const CvtOptions& o) {
  norm1 = add_module("norm1", std::make_shared<LayerNorm>(dim));
  attn = add_module("attn", std::make_shared<CvtAttention>(dim, heads, h, w, cls, o));
  norm2 = add_module("norm2", std::make_shared<LayerNorm>(dim));
  mlp = add_module("mlp", std::make_shared<CvtMlp>(dim, (int64_t)(dim * o.mlp_ratio), o.dropout));
  drop_path = add_module("drop_path", std::make_shared<DropPath>(dp));
}
Tensor CvtBlock::forward(const Tensor& x) {
  Tensor y = x + (*drop_path)((*attn)((*norm1)(x)));
  return y + (*drop_path)((*mlp)((*norm2)(y)));
}

CvtStage::CvtStage(int64_t cin, int64_t in_res, size_t i, bool cls, const CvtOptions& o) : emb_dropout(o.dropout) {
  const int64_t D = o.dims[i];
  patch_embed = add_module("patch_embed", std::make_shared<ConvEmbed>(cin, D, o.patch_sizes[i], o.patch_strides[i],
                                                                      o.patch_paddings[i]));
  h = w = (in_res + 2 * o.patch_paddings[i] - o.patch_sizes[i]) / o.patch_strides[i] + 1;
  if (cls) {
    cls_token = add_param("cls_token", zeros({1, 1, D}), /*decay=*/false);
    init_trunc_normal(cls_token, 0.02);
  }
  const int64_t n = o.depths[i];
  for (int64_t j = 0; j < n; ++j) {
    const double dp = n > 1 ? o.drop_path[i] * j / (n - 1) : 0.0;  // torch.linspace(0, rate, depth)
    blocks.push_back(add_module("blocks." + std::to_string(j),
                                std::make_shared<CvtBlock>(D, o.heads[i], h, w, cls, dp, o)));
  }
}

Tensor CvtStage::forward(const Tensor& x) {
  Tensor t = (*patch_embed)(x);  // (B,HW,D)
  const int64_t B = t.size(0), D = t.size(2);
  PW_CHECK(t.size(1) == h * w, "CvtStage: expected a ", h, "x", w, " token grid, got ", t.str());
  if (cls_token.defined()) t = concat({expand(cls_token, {B, 1, D}), t}, 1);
  t = dropout(t, emb_dropout, training());  // the official pos_drop (model.dropout)
  for (auto& b : blocks) t = (*b)(t);
  if (cls_token.defined()) return t;                           // (B,1+HW,D)
  return transpose(t, 1, 2).reshape({B, D, h, w});             // (B,D,H,W)
}

ConvolutionalVisionTransformer::ConvolutionalVisionTransformer(const CvtOptions& o) : opt(o) {
  int64_t cin = o.channels, res = o.image_size;
  const size_t n = o.dims.size();
  for (size_t i = 0; i < n; ++i) {
    stages.push_back(add_module("stage" + std::to_string(i), std::make_shared<CvtStage>(cin, res, i, i + 1 == n, o)));
    cin = o.dims[i];
    res = stages.back()->h;
  }
  norm = add_module("norm", std::make_shared<LayerNorm>(o.dims.back()));
  head = add_module("head", std::make_shared<Linear>(o.dims.back(), o.num_classes));
}

Tensor ConvolutionalVisionTransformer::forward(const Tensor& img) {
  PW_CHECK(img.dim() == 4 && img.size(1) == opt.channels && img.size(2) == opt.image_size &&
               img.size(3) == opt.image_size,
           "CvT: expected images (B,", opt.channels, ",", opt.image_size, ",", opt.image_size, "), got ", img.str(),
           "; check data.resize/crop_size against model.image_size");
  Tensor x = img;
  for (auto& s : stages) x = (*s)(x);  // the last stage returns its tokens, class token first
  const int64_t B = x.size(0), D = x.size(2);
  return (*head)((*norm)(narrow(x, 1, 0, 1).reshape({B, D})));
}

namespace {
std::shared_ptr<Module> make(const Options& model) {
  return std::make_shared<ConvolutionalVisionTransformer>(CvtOptions::from(model));
}
}  // namespace

PW_REGISTER_MODEL({"cvt",
                   "CvT (Wu et al. 2021): conv token embedding per stage, depthwise-conv + BatchNorm q/k/v "
                   "projections (k/v stride 2), class token in the last stage, no position embedding",
                   declare_model_keys(CvtOptions{}, check_cvt_options),
                   make});

}  // namespace pw
