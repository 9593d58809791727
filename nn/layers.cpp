#include "nn/layers.h"

#include <cmath>

namespace pw {

Linear::Linear(int64_t din, int64_t dout, bool with_bias) {
  // timm's ViT init: trunc_normal(std=.02) weights, zero biases.
  weight = add_param("weight", zeros({dout, din}));
  init_trunc_normal(weight, 0.02);
  if (with_bias) bias = add_param("bias", zeros({dout}), /*decay=*/false);
}
Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

void init_linears(Module& m, const std::string& scheme) {
  PW_CHECK(scheme == "timm" || scheme == "torch" || scheme == "xavier", "init_linears: unknown scheme '", scheme,
           "' (timm, torch or xavier)");
  if (auto* l = dynamic_cast<Linear*>(&m)) {
    if (scheme == "timm") {
      init_trunc_normal(l->weight, 0.02);
    } else if (scheme == "torch") {
      init_kaiming_uniform(l->weight, std::sqrt(5.0));
    } else {
      init_xavier_uniform(l->weight);
    }
    if (l->bias.defined()) {
      double bound = 1.0 / std::sqrt((double)l->weight.size(1));
      if (scheme == "torch") init_uniform(l->bias, -bound, bound);
      else init_constant(l->bias, 0.0);
    }
  }
  for (auto& [name, child] : m.children()) init_linears(*child, scheme);
}

LayerNorm::LayerNorm(int64_t d, double eps) : eps(eps) {
  weight = add_param("weight", ones({d}), false);
  bias = add_param("bias", zeros({d}), false);
}
Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, weight, bias, eps); }

BatchNorm::BatchNorm(int64_t c, double momentum, double eps) : momentum(momentum), eps(eps) {
  weight = add_param("weight", ones({c}), false);
  bias = add_param("bias", zeros({c}), false);
  running_mean = add_buffer("running_mean", zeros({c}));
  running_var = add_buffer("running_var", ones({c}));
}
namespace {
BatchNormSync* g_bn_sync = nullptr;
}
void set_batch_norm_sync(BatchNormSync* sync) { g_bn_sync = sync; }
BatchNormSync* batch_norm_sync() { return g_bn_sync; }

Tensor BatchNorm::forward(const Tensor& x) {
  return batch_norm(x, weight, bias, running_mean, running_var, training(), momentum, eps,
                    training() ? g_bn_sync : nullptr);
}

Conv2d::Conv2d(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t padding, int64_t groups,
               bool with_bias, int64_t dilation)
    : stride(stride), padding(padding), dilation(dilation), groups(groups) {
  PW_CHECK(cin % groups == 0 && cout % groups == 0, "Conv2d: in_channels ", cin, " and out_channels ", cout,
           " must both be divisible by groups ", groups);
  weight = add_param("weight", zeros({cout, cin / groups, k, k}));
  init_kaiming_uniform(weight, std::sqrt(5.0));  // PyTorch's Conv2d default
  if (with_bias) {
    bias = add_param("bias", zeros({cout}), false);
    double bound = 1.0 / std::sqrt((double)(cin / groups) * k * k);
    init_uniform(bias, -bound, bound);
  }
}
Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, {stride, stride}, {padding, padding}, {dilation, dilation}, groups);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, training()); }
Tensor DropPath::forward(const Tensor& x) { return drop_path(x, p, training()); }

FeedForward::FeedForward(int64_t d, int64_t hidden, double dropout) : dropout(dropout) {
  fc1 = add_module("fc1", std::make_shared<Linear>(d, hidden));
  fc2 = add_module("fc2", std::make_shared<Linear>(hidden, d));
}
Tensor FeedForward::forward(const Tensor& x) {
  Tensor h = pw::dropout(gelu((*fc1)(x)), dropout, training());
  return pw::dropout((*fc2)(h), dropout, training());
}

Attention::Attention(int64_t d, int64_t heads, int64_t dim_head, bool qkv_bias, double attn_dropout,
                     double proj_dropout)
    : heads(heads), dim_head(dim_head), attn_dropout(attn_dropout), proj_dropout(proj_dropout) {
  qkv = add_module("qkv", std::make_shared<Linear>(d, 3 * heads * dim_head, qkv_bias));
  proj = add_module("proj", std::make_shared<Linear>(heads * dim_head, d));
}
void Attention::set_term(std::shared_ptr<AttentionTerm> t) {
  PW_CHECK(!term, "Attention::set_term: this attention already has a logits term");
  term = add_module("term", std::move(t));
}

Tensor Attention::forward(const Tensor& x) {
  PW_CHECK(x.dim() == 3, "Attention: expected x of shape (B,N,D), got ", x.str());
  int64_t B = x.size(0), N = x.size(1);
  if (kind != "softmax") {  // linear attention: phi(Q) (phi(K)^T V), O(N HD^2)
    PW_CHECK(kind == "linear_taylor" || kind == "linear_elu", "Attention: unknown kind '", kind,
             "'; expected softmax, linear_taylor or linear_elu");
    PW_CHECK(!term, "Attention: a logits or qkv term (relative positions) needs softmax attention, not ", kind);
    const LinearFeatureMap fm = kind == "linear_taylor" ? LinearFeatureMap::Taylor : LinearFeatureMap::Elu;
    return dropout((*proj)(linear_attention_qkv((*qkv)(x), heads, fm)), proj_dropout, training());
  }
  const double scale = 1.0 / std::sqrt((double)dim_head);
  Tensor h = (*qkv)(x);  // (B,N,3*NH*HD)
  if (term) h = term->qkv_term(h);
  // Fused: no dropout on the probabilities and no term on the output; on CUDA, a head
  // width the flash kernels take (16, 32, 64, 128; LocalViT-T's 48 is composed).
  const bool cuda_hd = x.device() != Device::CUDA || dim_head == 16 || dim_head == 32 || dim_head == 64 ||
                       dim_head == 128;
  const bool fused = (attn_dropout == 0 || !training()) && !(term && term->has_output_term()) && cuda_hd;
  if (fused && (!term || !term->has_logits_term()))  // the fused kernel: no head-split copies
    return dropout((*proj)(attention_qkv(h, heads, scale)), proj_dropout, training());
  if (fused) {  // a plain additive bias runs fused too
    Tensor bias = term->static_bias();
    if (bias.defined() && attention_bias_fits(bias.shape(), B, heads, N))
      return dropout((*proj)(attention_qkv_bias(h, bias, heads, scale)), proj_dropout, training());
  }
  // (B,N,3*NH*HD) -> (3,B,NH,N,HD)
  Tensor qkv_ = permute(h.reshape({B, N, 3, heads, dim_head}), {2, 0, 3, 1, 4});
  std::vector<Tensor> parts = chunk(qkv_, 3, 0);
  Tensor q = parts[0].reshape({B, heads, N, dim_head});
  Tensor k = parts[1].reshape({B, heads, N, dim_head});
  Tensor v = parts[2].reshape({B, heads, N, dim_head});
  Tensor o;
  if (term && (attn_dropout == 0 || !training())) o = term->attend(q, k, v);  // (B,NH,N,HD) or undefined
  if (o.defined())
    return dropout((*proj)(permute(o, {0, 2, 1, 3}).reshape({B, N, heads * dim_head})), proj_dropout, training());
  Tensor logits = matmul(q * scale, transpose(k, -2, -1));  // (B,NH,N,N)
  if (term && term->has_logits_term()) {
    Tensor t = term->logits_term(q, k);
    if (t.defined()) logits = logits + t;
  }
  Tensor attn = dropout(softmax(logits, -1), attn_dropout, training());
  o = matmul(attn, v);  // (B,NH,N,HD)
  if (term && term->has_output_term()) o = o + term->output_term(attn, v);
  Tensor out = permute(o, {0, 2, 1, 3}).reshape({B, N, heads * dim_head});  // (B,N,NH*HD)
  return dropout((*proj)(out), proj_dropout, training());
}

Block::Block(int64_t d, int64_t heads, int64_t dim_head, int64_t mlp_dim, bool qkv_bias, double dropout,
             double attn_dropout, double drop_path_p) {
  norm1 = add_module("norm1", std::make_shared<LayerNorm>(d));
  attn = add_module("attn", std::make_shared<Attention>(d, heads, dim_head, qkv_bias, attn_dropout, dropout));
  norm2 = add_module("norm2", std::make_shared<LayerNorm>(d));
  mlp = add_module("mlp", std::make_shared<FeedForward>(d, mlp_dim, dropout));
  drop_path = add_module("drop_path", std::make_shared<DropPath>(drop_path_p));
}
Tensor Block::forward(const Tensor& x) {
  Tensor h = x + (*drop_path)((*attn)((*norm1)(x)));
  return h + (*drop_path)((*mlp)((*norm2)(h)));
}

Tensor posemb_sincos_2d(int64_t h, int64_t w, int64_t dim, double temperature) {
  PW_CHECK(dim % 4 == 0 && dim >= 8, "posemb_sincos_2d: dim must be a multiple of 4 and >= 8, got ", dim);
  int64_t q = dim / 4;
  std::vector<double> pe(h * w * dim);
  for (int64_t yy = 0; yy < h; ++yy)
    for (int64_t xx = 0; xx < w; ++xx) {
      double* row = &pe[(yy * w + xx) * dim];
      for (int64_t i = 0; i < q; ++i) {
        // omega_i = 1 / temperature^(i / (q-1)), computed in float32 like torch
        double omega = 1.0 / std::pow(temperature, (double)(float)((float)i / (float)(q - 1)));
        row[i] = std::sin(xx * omega);
        row[q + i] = std::cos(xx * omega);
        row[2 * q + i] = std::sin(yy * omega);
        row[3 * q + i] = std::cos(yy * omega);
      }
    }
  return from_vector(pe, {h * w, dim});
}

Tensor posemb_sinusoidal_1d(int64_t n, int64_t dim, double base) {
  PW_CHECK(dim % 2 == 0, "posemb_sinusoidal_1d: dim must be even, got ", dim);
  std::vector<double> pe(n * dim);
  for (int64_t p = 0; p < n; ++p)
    for (int64_t i = 0; i < dim / 2; ++i) {
      double a = p / std::pow(base, 2.0 * i / dim);
      pe[p * dim + 2 * i] = std::sin(a);
      pe[p * dim + 2 * i + 1] = std::cos(a);
    }
  return from_vector(pe, {n, dim});
}

}  // namespace pw
