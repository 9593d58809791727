#include "nn/conformer.h"

#include <algorithm>
#include <cmath>

namespace pw {

namespace {
constexpr double kMasked = -1e9;  // added to the logits of a padded key: exp underflows to exactly 0
}

void ConformerOptions::bind(KeyBinder& b) {
  b("frontend", frontend,
    KeySpec::Enum({"subsampling", "patches"},
                  "input: subsampling (log-mel (B,1,F,T), F = model.image_size; two 3x3 stride-2 convs + ReLU, "
                  "then Linear) or patches (images, patch tokens)"));
  b("patch_size", patch_size, KeySpec::Int("patches: patch height and width in pixels; divides image_size").ge(1));
  b("patch_embed", patch_embed,
    KeySpec::Enum({"linear", "conv", "conv_stem"}, "patches: the patch embedding (as the ViTs' model.patch_embed)"));
  b("max_frames", max_frames,
    KeySpec::Int("subsampling with rel_pos: the most input frames a sample may have; shorter batches are padded "
                 "to it (the relative-position tables are built for one length)")
        .ge(7));
  b("dim", dim, KeySpec::Int("model width D (Conformer S: 144)").ge(1));
  b("depth", depth, KeySpec::Int("number of Conformer blocks (Conformer S: 16)").ge(1));
  b("heads", heads, KeySpec::Int("attention heads; divides dim (Conformer S: 4)").ge(1));
  b("ff_mult", ff_mult, KeySpec::Int("feed-forward hidden width = ff_mult x dim (paper: 4)").ge(1));
  b("conv_kernel", conv_kernel, KeySpec::Int("depthwise conv kernel size (paper: 32; odd keeps 'same' centred)").ge(1));
  b("causal", causal, KeySpec::Bool("causal depthwise conv (left padding only): no frame reads a later one"));
  b("conv_norm", conv_norm,
    KeySpec::Enum({"batch", "layer"}, "norm after the depthwise conv: BatchNorm1d (paper) or LayerNorm"));
  b("dropout", dropout, KeySpec::Float("dropout in every residual module (paper: 0.1)").ge(0).lt(1));
  b("head", head,
    KeySpec::Enum({"classify", "ctc"},
                  "classify: masked mean over frames -> Linear (keywords, images); ctc: per-frame log-probabilities "
                  "(B,T',num_classes), class 0 the blank"));
  rel_pos.bind(b);
}

ConformerOptions ConformerOptions::from(const Options& model) {
  ConformerOptions o;
  read_model_options(o, model);
  return o;
}

int64_t conformer_subsampled(int64_t T) { return std::max<int64_t>(((T - 1) / 2 - 1) / 2, 1); }

// ---- MaskedTerm ----

MaskedTerm::MaskedTerm(std::shared_ptr<AttentionTerm> t) {
  if (t) inner = add_module("rel", std::move(t));
}
bool MaskedTerm::has_logits_term() const { return (inner && inner->has_logits_term()) || mask.defined(); }
Tensor MaskedTerm::static_bias() {
  if (inner && inner->has_logits_term()) {
    Tensor b = inner->static_bias();
    if (!b.defined()) return Tensor();  // contextual (shaw): Attention composes and calls logits_term
    return mask.defined() ? b + mask : b;
  }
  return mask;
}
Tensor MaskedTerm::logits_term(const Tensor& q, const Tensor& k) {
  Tensor t = inner && inner->has_logits_term() ? inner->logits_term(q, k) : Tensor();
  if (!mask.defined()) return t;
  return t.defined() ? t + mask : mask;
}

// ---- modules ----

ConformerFeedForward::ConformerFeedForward(int64_t d, int64_t hidden, double dropout) : p(dropout) {
  norm = add_module("norm", std::make_shared<LayerNorm>(d));
  fc1 = add_module("fc1", std::make_shared<Linear>(d, hidden));
  fc2 = add_module("fc2", std::make_shared<Linear>(hidden, d));
}
Tensor ConformerFeedForward::forward(const Tensor& x) {
  Tensor h = pw::dropout(silu((*fc1)((*norm)(x))), p, training());
  return pw::dropout((*fc2)(h), p, training());
}

ConformerConv::ConformerConv(int64_t d, int64_t k, bool causal, const std::string& norm_kind, double dropout)
    : kernel(k), causal(causal), p(dropout) {
  norm = add_module("norm", std::make_shared<LayerNorm>(d));
  pw1 = add_module("pw1", std::make_shared<Linear>(d, 2 * d));
  dw_weight = add_param("dw_weight", zeros({d, 1, k}));
  init_kaiming_uniform(dw_weight, std::sqrt(5.0));  // PyTorch's Conv1d default
  dw_bias = add_param("dw_bias", zeros({d}), false);
  init_uniform(dw_bias, -1.0 / std::sqrt((double)k), 1.0 / std::sqrt((double)k));
  if (norm_kind == "batch") bn = add_module("bn", std::make_shared<BatchNorm>(d));
  else ln = add_module("ln", std::make_shared<LayerNorm>(d));
  pw2 = add_module("pw2", std::make_shared<Linear>(d, d));
}

Tensor ConformerConv::forward(const Tensor& x) {
  const int64_t D = x.size(2);
  Tensor h = glu((*pw1)((*norm)(x)), -1);  // (B,N,D)
  if (frame_mask.defined()) h = h * frame_mask;  // padded frames read as zeros
  // causal: K-1 zeros on the left; same: (K-1)/2 left, the rest right (torch's padding='same')
  const int64_t left = causal ? kernel - 1 : (kernel - 1) / 2, right = kernel - 1 - left;
  Tensor c = pad(transpose(h, 1, 2), {left, right});                // (B,D,N+K-1)
  c = conv1d(c, dw_weight, dw_bias, 1, 0, 1, D);                   // (B,D,N)
  if (bn) c = transpose(silu((*bn)(c)), 1, 2);                      // (B,N,D)
  else c = silu((*ln)(transpose(c, 1, 2)));
  return pw::dropout((*pw2)(c), p, training());
}

ConformerBlock::ConformerBlock(const ConformerOptions& o, std::shared_ptr<AttentionTerm> rel) : p(o.dropout) {
  ff1 = add_module("ff1", std::make_shared<ConformerFeedForward>(o.dim, o.ff_mult * o.dim, o.dropout));
  attn_norm = add_module("attn_norm", std::make_shared<LayerNorm>(o.dim));
  attn = add_module("attn", std::make_shared<Attention>(o.dim, o.heads, o.dim / o.heads, /*qkv_bias=*/true, 0.0,
                                                        /*proj_dropout=*/o.dropout));
  term = std::make_shared<MaskedTerm>(std::move(rel));
  attn->set_term(term);
  conv = add_module("conv", std::make_shared<ConformerConv>(o.dim, o.conv_kernel, o.causal, o.conv_norm, o.dropout));
  ff2 = add_module("ff2", std::make_shared<ConformerFeedForward>(o.dim, o.ff_mult * o.dim, o.dropout));
  norm = add_module("norm", std::make_shared<LayerNorm>(o.dim));
}

void ConformerBlock::set_padding(const Tensor& mask, const Tensor& frame_mask) {
  term->mask = mask;
  conv->frame_mask = frame_mask;
}

Tensor ConformerBlock::forward(const Tensor& x) {
  Tensor h = x + (*ff1)(x) * 0.5;
  h = h + (*attn)((*attn_norm)(h));
  h = h + (*conv)(h);
  h = h + (*ff2)(h) * 0.5;
  return (*norm)(h);
}

ConvSubsampling::ConvSubsampling(int64_t freq, int64_t channels, int64_t dim) {
  conv1 = add_module("conv1", std::make_shared<Conv2d>(channels, dim, 3, 2));
  conv2 = add_module("conv2", std::make_shared<Conv2d>(dim, dim, 3, 2));
  const int64_t f = ((freq - 1) / 2 - 1) / 2;
  out = add_module("out", std::make_shared<Linear>(dim * f, dim));
}

Tensor ConvSubsampling::forward(const Tensor& x) {
  Tensor y = relu((*conv2)(relu((*conv1)(x))));  // (B,C,F',T')
  const int64_t B = y.size(0), C = y.size(1), F = y.size(2), T = y.size(3);
  return (*out)(permute(y, {0, 3, 1, 2}).reshape({B, T, C * F}));  // (B,T',C*F') -> (B,T',D)
}

// ---- the model ----

Conformer::Conformer(const ConformerOptions& o) : opt(o) {
  PW_CHECK(o.dim % o.heads == 0, "conformer: model.dim ", o.dim, " is not divisible by model.heads ", o.heads);
  int64_t h = 1, w = 1;
  if (o.frontend == "subsampling") {
    PW_CHECK(o.image_size >= 7, "conformer: model.image_size (the mel bins F) must be >= 7 for the two stride-2 "
                                "convs, got ", o.image_size);
    subsampling = add_module("subsampling", std::make_shared<ConvSubsampling>(o.image_size, o.channels, o.dim));
    w = conformer_subsampled(o.max_frames);
  } else {
    PW_CHECK(o.image_size % o.patch_size == 0, "conformer: model.patch_size ", o.patch_size,
             " does not divide model.image_size ", o.image_size);
    patch_embed =
        add_module("patch_embed", std::make_shared<PatchEmbed>(o.patch_embed, o.channels, o.patch_size, o.dim));
    h = w = o.image_size / o.patch_size;
  }
  const int64_t dh = o.dim / o.heads;
  for (int64_t i = 0; i < o.depth; ++i) {
    std::shared_ptr<AttentionTerm> rel;
    if (o.rel_pos.kind == "shaw" && h == 1) {  // 1D Shaw: a (2k+1, HD) table, not the 2D (2k+1)^2
      const int64_t k = o.rel_pos.clip;
      std::vector<int64_t> idx(w * w);
      for (int64_t a = 0; a < w; ++a)
        for (int64_t b = 0; b < w; ++b) idx[a * w + b] = std::min(std::max(b - a, -k), k) + k;
      rel = std::make_shared<ShawTerm>(RelIndex::build(idx, w, 2 * k + 1), dh, o.rel_pos.shaw_values);
    } else {
      rel = make_rel_pos(o.rel_pos, h, w, o.heads, dh, 0);
    }
    blocks.push_back(add_module("blocks." + std::to_string(i), std::make_shared<ConformerBlock>(o, rel)));
  }
  head = add_module("head", std::make_shared<Linear>(o.dim, o.num_classes));
}

Tensor Conformer::output_lengths(const Tensor& lengths) const {
  if (!subsampling) return lengths;
  Tensor l = lengths.cpu();
  std::vector<int64_t> v(l.numel());
  for (int64_t b = 0; b < l.numel(); ++b) v[b] = conformer_subsampled(l.data<int64_t>()[b]);
  return from_indices(v, {l.numel()}).to(lengths.device());
}

Tensor Conformer::encode(const Tensor& input, const Tensor& lengths, std::vector<int64_t>* valid) {
  Tensor x;
  int64_t B = input.size(0);
  std::vector<int64_t> len(B);
  bool padded = false;
  if (subsampling) {
    PW_CHECK(input.dim() == 4 && input.size(1) == opt.channels && input.size(2) == opt.image_size,
             "conformer: expected log-mel features (B,", opt.channels, ",", opt.image_size, ",T), got ", input.str(),
             "; model.image_size is the number of mel bins (data.n_mels)");
    int64_t T = input.size(3);
    Tensor in = input;
    if (opt.rel_pos.kind != "none") {
      PW_CHECK(T <= opt.max_frames, "conformer: input of ", T, " frames is longer than model.max_frames ",
               opt.max_frames, "; raise model.max_frames (or clip the audio: data.clip_seconds)");
      if (T < opt.max_frames) in = pad(input, {0, opt.max_frames - T});
    }
    if (lengths.defined()) {
      PW_CHECK(lengths.dim() == 1 && lengths.size(0) == B && lengths.dtype() == DType::I64,
               "conformer: lengths ", lengths.str(), " must be (B) I64 with B = ", B);
      Tensor l = lengths.cpu();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t lb = l.data<int64_t>()[b];
        PW_CHECK(lb >= 1 && lb <= T, "conformer: lengths[", b, "] = ", lb, " is outside [1, ", T, "]");
        len[b] = conformer_subsampled(lb);
      }
    } else {
      std::fill(len.begin(), len.end(), conformer_subsampled(T));
    }
    x = (*subsampling)(in);  // (B,N,D)
  } else {
    PW_CHECK(!lengths.defined(), "conformer: frontend patches takes fixed-size images, not lengths");
    x = (*patch_embed)(input);
    std::fill(len.begin(), len.end(), x.size(1));
  }
  x = dropout(x, opt.dropout, training());
  const int64_t N = x.size(1);
  for (int64_t b = 0; b < B; ++b) padded = padded || len[b] < N;
  Tensor mask, frame_mask;
  if (padded) {
    std::vector<double> m(B * N * N, 0.0), f(B * N, 1.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = len[b]; j < N; ++j) {
        f[b * N + j] = 0.0;
        for (int64_t i = 0; i < N; ++i) m[(b * N + i) * N + j] = kMasked;
      }
    mask = from_vector(m, {B, 1, N, N}, x.dtype()).to(x.device());
    frame_mask = from_vector(f, {B, N, 1}, x.dtype()).to(x.device());
  }
  for (auto& blk : blocks) {
    blk->set_padding(mask, frame_mask);
    x = (*blk)(x);
  }
  for (auto& blk : blocks) blk->set_padding(Tensor(), Tensor());
  if (valid) *valid = len;
  return x;
}

Tensor Conformer::forward_padded(const Tensor& input, const Tensor& lengths) {
  std::vector<int64_t> len;
  Tensor x = encode(input, lengths, &len);  // (B,N,D)
  const int64_t B = x.size(0), N = x.size(1);
  if (opt.head == "ctc") return log_softmax((*head)(x), -1);  // (B,N,C)
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) padded = padded || len[b] < N;
  if (!padded) return (*head)(mean(x, {1}));
  // masked mean: sum over the valid frames / their count
  std::vector<double> w(B * N, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < len[b]; ++j) w[b * N + j] = 1.0 / (double)len[b];
  Tensor wt = from_vector(w, {B, N, 1}, x.dtype()).to(x.device());
  return (*head)(sum(x * wt, {1}));
}

// ---- CTC decoding and scoring ----

std::vector<std::vector<int64_t>> ctc_greedy_decode(const Tensor& log_probs, const Tensor& lengths, int64_t blank) {
  PW_CHECK(log_probs.dim() == 3, "ctc_greedy_decode: expected log_probs (B,T,C), got ", log_probs.str());
  Tensor lp = log_probs.detach().cpu().to(DType::F64);
  const int64_t B = lp.size(0), T = lp.size(1), C = lp.size(2);
  Tensor l = lengths.defined() ? lengths.cpu() : Tensor();
  std::vector<std::vector<int64_t>> out(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t Tb = l.defined() ? std::min(l.data<int64_t>()[b], T) : T;
    int64_t prev = -1;
    for (int64_t t = 0; t < Tb; ++t) {
      const double* row = lp.data<double>() + (b * T + t) * C;
      const int64_t k = std::max_element(row, row + C) - row;
      if (k != prev && k != blank) out[b].push_back(k);
      prev = k;
    }
  }
  return out;
}

int64_t edit_distance(const std::vector<int64_t>& ref, const std::vector<int64_t>& hyp) {
  std::vector<int64_t> row(hyp.size() + 1);
  for (size_t j = 0; j <= hyp.size(); ++j) row[j] = (int64_t)j;
  for (size_t i = 1; i <= ref.size(); ++i) {
    int64_t diag = row[0];
    row[0] = (int64_t)i;
    for (size_t j = 1; j <= hyp.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (ref[i - 1] != hyp[j - 1])});
      diag = up;
    }
  }
  return row[hyp.size()];
}

double word_error_rate(const std::vector<std::vector<int64_t>>& refs, const std::vector<std::vector<int64_t>>& hyps) {
  PW_CHECK(refs.size() == hyps.size(), "word_error_rate: ", refs.size(), " references but ", hyps.size(),
           " hypotheses");
  int64_t err = 0, n = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    err += edit_distance(refs[i], hyps[i]);
    n += (int64_t)refs[i].size();
  }
  return n ? (double)err / (double)n : 0.0;
}

// ---- registration ----

namespace {
void check_conformer(const Options& m) {
  if (m.get_int("dim") % m.get_int("heads") != 0)
    m.fail("heads", std::to_string(m.get_int("heads")) + " does not divide model.dim " +
                        std::to_string(m.get_int("dim")));
  if (m.get_string("frontend") == "patches" && m.get_int("image_size") % m.get_int("patch_size") != 0)
    m.fail("patch_size", std::to_string(m.get_int("patch_size")) + " does not divide model.image_size " +
                             std::to_string(m.get_int("image_size")));
  if (m.get_string("frontend") == "patches" && m.get_string("head") == "ctc")
    m.fail("head", "ctc needs a sequence input (frontend: subsampling), not image patches");
  if (m.get_string("frontend") == "subsampling" && m.get_int("image_size") < 7)
    m.fail("image_size", "is the mel bins F of the log-mel input; the two stride-2 convs need F >= 7");
}
}  // namespace

PW_REGISTER_MODEL({"conformer",
                   "Conformer (Gulati et al. 2020): FF/2, MHSA with relative positions, conv module, FF/2, LN; conv "
                   "subsampling for log-mel input or patch tokens for images; classify or CTC head",
                   declare_model_keys(ConformerOptions{}, check_conformer),
                   [](const Options& model) -> std::shared_ptr<Module> {
                     return std::make_shared<Conformer>(ConformerOptions::from(model));
                   }});

}  // namespace pw
