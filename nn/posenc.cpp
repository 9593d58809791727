#include "nn/posenc.h"

#include <algorithm>
#include <cmath>

namespace pw {

void RelPosOptions::bind(KeyBinder& b) {
  b("rel_pos", kind,
    KeySpec::Enum({"none", "swin", "alibi", "rope2d", "shaw", "irpe", "xl", "huang"},
                  "relative position encoding inside attention (nn/posenc.h); composes with pos_embed"));
  b("rel_pos_clip", clip, KeySpec::Int("shaw, huang: clipping distance k per axis (Shaw et al. 2018: 16)").ge(1));
  b("shaw_values", shaw_values, KeySpec::Bool("shaw: also the value-side term sum_j a_ij rV_ij"));
  b("rel_pos_distance", alibi_distance,
    KeySpec::Enum({"euclidean", "manhattan"}, "alibi: the patch distance the head slopes multiply"));
  b("rope_base", rope_base, KeySpec::Float("rope2d: frequency base theta (Heo et al. 2024: 100)").gt(1));
  b("irpe_method", irpe_method,
    KeySpec::Enum({"euclidean", "quantized", "cross", "product"}, "irpe: the 2D bucket method (iRPE's default: product)"));
  b("irpe_ratio", irpe_ratio,
    KeySpec::Float("irpe: alpha = ratio, beta = 2 ratio, gamma = 8 ratio of the piecewise index (iRPE: 1.9)").ge(0.5));
  b("irpe_shared_head", irpe_shared_head, KeySpec::Bool("irpe: one table shared by all heads (iRPE's default)"));
  b("irpe_mode", irpe_mode,
    KeySpec::Enum({"bias", "contextual"}, "irpe: a learned scalar per bucket (bias, fused) or a learned vector per "
                                          "bucket multiplied by q, k or attention (contextual, op by op)"));
  b("sasa_kernel", sasa_kernel,
    KeySpec::Int("attention: sasa: the side k of the local k x k window, odd (SASA: 7)").ge(1));
  b("irpe_on", irpe_on,
    KeySpec::Enum({"k", "qk", "kv", "qkv"}, "irpe: the sides the encoding acts on (contextual; bias mode: k only); "
                                            "iRPE's recommended: k"));
}

// ---- index tables ----

std::vector<int64_t> swin_relative_index(int64_t h, int64_t w) {
  const int64_t N = h * w;
  std::vector<int64_t> idx(N * N);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      idx[i * N + j] = (i / w - j / w + h - 1) * (2 * w - 1) + (i % w - j % w + w - 1);
  return idx;
}

std::vector<int64_t> shaw_relative_index(int64_t h, int64_t w, int64_t k) {
  const int64_t N = h * w, S = 2 * k + 1;
  auto clip = [k](int64_t d) { return std::min(std::max(d, -k), k) + k; };
  std::vector<int64_t> idx(N * N);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) idx[i * N + j] = clip(j / w - i / w) * S + clip(j % w - i % w);
  return idx;
}

int64_t irpe_piecewise(double x, double alpha, double beta, double gamma) {
  // float32 tensor ops with double scalars, as iRPE's PyTorch code computes it
  const float xf = (float)x, af = (float)alpha, bf = (float)beta;
  const float ax = std::fabs(xf);
  if (ax <= af) return (int64_t)std::nearbyint(xf);  // round half to even, as torch.round
  const float lg = (float)std::log(gamma / alpha), ba = (float)(beta - alpha);
  float y = std::nearbyint(af + std::log(ax / af) / lg * ba);
  y = std::min(y, bf);
  return (int64_t)((xf < 0 ? -1.0f : 1.0f) * y);  // .to(long) truncates toward zero
}

std::vector<int64_t> irpe_bucket_index(const std::string& method, int64_t h, int64_t w, double alpha, double beta,
                                       double gamma, int64_t* num_buckets) {
  const int64_t N = h * w, bi = (int64_t)beta, S = 2 * bi + 1;
  std::vector<int64_t> idx(N * N);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      // iRPE's diff = pos_i - pos_j, (row, col)
      const int64_t dr = i / w - j / w, dc = i % w - j % w;
      int64_t v;
      if (method == "euclidean") {
        const double dis = std::nearbyint(std::sqrt((float)(dr * dr + dc * dc)));
        v = irpe_piecewise(dis, alpha, beta, gamma) + bi;
      } else if (method == "quantized") {  // iRPE's code: the squared distance
        v = irpe_piecewise((double)(dr * dr + dc * dc), alpha, beta, gamma) + bi;
      } else if (method == "product") {
        v = (irpe_piecewise(dr, alpha, beta, gamma) + bi) * S + irpe_piecewise(dc, alpha, beta, gamma) + bi;
      } else if (method == "cross_rows") {
        v = irpe_piecewise(dr, alpha, beta, gamma) + bi;
      } else if (method == "cross_cols") {
        v = irpe_piecewise(dc, alpha, beta, gamma) + bi;
      } else {
        PW_FAIL("irpe_bucket_index: unknown method '", method,
                "' (euclidean, quantized, product, cross_rows, cross_cols)");
      }
      idx[i * N + j] = v;
    }
  if (num_buckets) *num_buckets = method == "product" ? S * S : S;
  return idx;
}

std::vector<int64_t> with_skip(const std::vector<int64_t>& idx, int64_t N, int64_t skip, int64_t value) {
  if (skip == 0) return idx;
  const int64_t M = N + skip;
  std::vector<int64_t> out(M * M, value);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) out[(i + skip) * M + j + skip] = idx[i * N + j];
  return out;
}

std::vector<double> alibi_slopes(int64_t n) {
  auto pow2 = [](int64_t m) {
    const double start = std::pow(2.0, -std::pow(2.0, -(std::log2((double)m) - 3)));
    std::vector<double> s(m);
    for (int64_t i = 0; i < m; ++i) s[i] = start * std::pow(start, (double)i);
    return s;
  };
  const int64_t p = (int64_t)1 << (int64_t)std::floor(std::log2((double)n));
  if (p == n) return pow2(n);
  std::vector<double> s = pow2(p), extra = alibi_slopes(2 * p);
  for (int64_t i = 0; (int64_t)s.size() < n; i += 2) s.push_back(extra[i]);
  return s;
}

Tensor alibi_bias_2d(int64_t h, int64_t w, int64_t heads, const std::string& distance, int64_t skip) {
  PW_CHECK(distance == "euclidean" || distance == "manhattan", "alibi_bias_2d: unknown distance '", distance,
           "' (euclidean or manhattan)");
  const int64_t N = h * w, M = N + skip;
  const std::vector<double> slope = alibi_slopes(heads);
  std::vector<double> b(heads * M * M, 0.0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const double dr = (double)(i / w - j / w), dc = (double)(i % w - j % w);
      const double d = distance == "euclidean" ? std::sqrt(dr * dr + dc * dc) : std::fabs(dr) + std::fabs(dc);
      for (int64_t hh = 0; hh < heads; ++hh) b[(hh * M + i + skip) * M + j + skip] = -slope[hh] * d;
    }
  return from_vector(b, {heads, M, M});
}

std::vector<double> rope_axial_angles(int64_t h, int64_t w, int64_t dim_head, double base, int64_t skip) {
  PW_CHECK(dim_head % 4 == 0, "rope_axial_angles: dim_head must be a multiple of 4 (dim_head/4 frequencies per "
                              "axis), got ", dim_head);
  const int64_t H2 = dim_head / 2, Q = dim_head / 4;
  std::vector<double> a((h * w + skip) * H2, 0.0);
  for (int64_t n = 0; n < h * w; ++n) {
    double* row = &a[(n + skip) * H2];
    for (int64_t m = 0; m < Q; ++m) {
      const double f = 1.0 / std::pow(base, (double)(4 * m) / (double)dim_head);
      row[m] = (double)(n % w) * f;      // column (RoPE-ViT's t_x)
      row[Q + m] = (double)(n / w) * f;  // row (t_y)
    }
  }
  return a;
}

Tensor xl_relative_sinusoid(int64_t n, int64_t dim) {
  PW_CHECK(dim % 2 == 0 && dim >= 2, "xl_relative_sinusoid: dim must be even, got ", dim);
  const int64_t half = dim / 2;
  std::vector<double> e((2 * n - 1) * dim);
  for (int64_t c = 0; c < 2 * n - 1; ++c) {
    const double d = (double)(n - 1 - c);
    for (int64_t m = 0; m < half; ++m) {
      const double f = 1.0 / std::pow(10000.0, (double)(2 * m) / (double)dim);
      e[c * dim + m] = std::sin(d * f);
      e[c * dim + half + m] = std::cos(d * f);
    }
  }
  return from_vector(e, {2 * n - 1, dim});
}

// ---- resolution extrapolation ----

namespace {

Tensor resize_grid(const Tensor& g, int64_t h1, int64_t w1, const std::string& mode) {  // (1,C,h,w)
  PW_CHECK(mode == "bicubic" || mode == "bilinear", "resize: unknown interpolation '", mode,
           "' (bicubic or bilinear)");
  return mode == "bicubic" ? interpolate_bicubic(g, h1, w1) : interpolate_bilinear(g, h1, w1);
}

int64_t isqrt_exact(int64_t n) {  // s with s*s == n, else -1
  if (n < 0) return -1;
  int64_t s = (int64_t)std::llround(std::sqrt((double)n));
  return s * s == n ? s : -1;
}

}  // namespace

Tensor resize_pos_embed(const Tensor& pe, int64_t skip, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                        const std::string& mode) {
  PW_CHECK(pe.dim() == 3 && pe.size(0) == 1 && pe.size(1) == skip + h0 * w0, "resize_pos_embed: expected (1, ", skip,
           " + ", h0, "*", w0, ", D), got ", pe.str());
  const int64_t D = pe.size(2);
  Tensor grid = permute(narrow(pe, 1, skip, h0 * w0).reshape({1, h0, w0, D}), {0, 3, 1, 2});  // (1,D,h0,w0)
  Tensor out = permute(resize_grid(grid, h1, w1, mode), {0, 2, 3, 1}).reshape({1, h1 * w1, D});
  return skip > 0 ? concat({narrow(pe, 1, 0, skip), out}, 1) : out;
}

Tensor resize_rel_table(const Tensor& table, int64_t h0, int64_t w0, int64_t h1, int64_t w1, const std::string& mode) {
  const int64_t A0 = 2 * h0 - 1, B0 = 2 * w0 - 1, A1 = 2 * h1 - 1, B1 = 2 * w1 - 1;
  PW_CHECK(table.dim() == 2 && table.size(0) == A0 * B0, "resize_rel_table: expected ((2*", h0, "-1)(2*", w0,
           "-1), NH), got ", table.str());
  const int64_t NH = table.size(1);
  Tensor grid = permute(table.reshape({1, A0, B0, NH}), {0, 3, 1, 2});  // (1,NH,A0,B0)
  return permute(resize_grid(grid, A1, B1, mode), {0, 2, 3, 1}).reshape({A1 * B1, NH});
}

std::map<std::string, Tensor> fit_state_dict_to_resolution(const Module& model, std::map<std::string, Tensor> sd,
                                                           const std::string& mode, std::vector<std::string>* resized) {
  auto ends_with = [](const std::string& s, const std::string& e) {
    return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
  };
  for (const auto& [name, want] : model.state_dict()) {
    auto it = sd.find(name);
    if (it == sd.end() || it->second.shape() == want.shape()) continue;
    const Tensor& have = it->second;
    Tensor fitted;
    if ((name == "pos_embed" || ends_with(name, ".pos_embed")) && have.dim() == 3 && want.dim() == 3 &&
        have.size(2) == want.size(2)) {
      for (int64_t skip : {1, 0}) {
        const int64_t s0 = isqrt_exact(have.size(1) - skip), s1 = isqrt_exact(want.size(1) - skip);
        if (s0 > 0 && s1 > 0) {
          fitted = resize_pos_embed(have, skip, s0, s0, s1, s1, mode);
          break;
        }
      }
    } else if (ends_with(name, "term.table") && have.dim() == 2 && want.dim() == 2 && have.size(1) == want.size(1)) {
      const int64_t a0 = isqrt_exact(have.size(0)), a1 = isqrt_exact(want.size(0));
      if (a0 > 0 && a1 > 0 && a0 % 2 == 1 && a1 % 2 == 1)
        fitted = resize_rel_table(have, (a0 + 1) / 2, (a0 + 1) / 2, (a1 + 1) / 2, (a1 + 1) / 2, mode);
    }
    if (fitted.defined()) {
      it->second = fitted.to(have.dtype());
      if (resized) resized->push_back(name);
    }
  }
  return sd;
}

// ---- terms ----

void RelIndexTerm::add_index(const std::string& name, const RelIndex& r) {
  add_constant(name, r.idx);
  add_constant(name + "_inv_off", r.inv_off);
  add_constant(name + "_inv_pos", r.inv_pos);
}

void RelIndexTerm::add_used(const UsedRows& u, const std::vector<std::string>& names) {
  if (!u.rows.defined()) return;
  add_constant("used_rows", u.rows);
  for (size_t p = 0; p < u.index.size(); ++p) add_index(names[p] + "_used", u.index[p]);
}

void RelTableBias::add_table(const std::string& name, RelIndex index, int64_t heads, double init_std) {
  Tensor t = add_param(name, zeros({index.T, heads}), /*decay=*/false);  // Swin: no decay on the table
  if (init_std > 0) init_trunc_normal(t, init_std);
  add_index("index", index);
  tables.push_back(t);
  indexes.push_back(std::move(index));
}

Tensor RelTableBias::static_bias() {
  Tensor b;
  for (size_t k = 0; k < tables.size(); ++k) {
    Tensor g = rel_bias_gather(tables[k], indexes[k]);
    b = b.defined() ? b + g : g;
  }
  return b;
}

RotaryQK::RotaryQK(const std::vector<double>& angles, int64_t n, int64_t half, int64_t heads) : heads(heads) {
  std::vector<double> c(angles.size()), s(angles.size());
  for (size_t i = 0; i < angles.size(); ++i) {
    c[i] = std::cos(angles[i]);
    s[i] = std::sin(angles[i]);
  }
  cos = add_constant("cos", from_vector(c, {n, half}));
  sin = add_constant("sin", from_vector(s, {n, half}));
}

Tensor RotaryQK::qkv_term(const Tensor& qkv) {
  if (cos.dtype() == qkv.dtype()) return rope_qkv(qkv, cos, sin, heads);
  return rope_qkv(qkv, cos.to(qkv.dtype()), sin.to(qkv.dtype()), heads);
}

UsedRows used_rows(const std::vector<RelIndex>& full) {
  UsedRows u;
  const int64_t T = full.at(0).T;
  std::vector<std::vector<double>> host;
  std::vector<int64_t> id(T, -1);  // table row -> its compact row
  for (const RelIndex& r : full) {
    PW_CHECK(r.T == T, "used_rows: indexes over tables of ", T, " and ", r.T, " rows");
    host.push_back(r.idx.to(Device::CPU).to_vector());
    for (double v : host.back())
      if (v >= 0) id[(int64_t)v] = 0;
  }
  std::vector<double> rows;
  for (int64_t t = 0; t < T; ++t)
    if (id[t] == 0) {
      id[t] = (int64_t)rows.size();
      rows.push_back((double)t);
    }
  if ((int64_t)rows.size() == T) {
    u.index = full;
    return u;
  }
  for (size_t p = 0; p < full.size(); ++p) {
    std::vector<int64_t> c(host[p].size());
    for (size_t e = 0; e < c.size(); ++e) c[e] = host[p][e] < 0 ? -1 : id[(int64_t)host[p][e]];
    u.index.push_back(RelIndex::build(c, full[p].N, (int64_t)rows.size(), full[p].device()));
  }
  u.rows = from_vector(rows, {(int64_t)rows.size()}, DType::I64).to(full[0].device());
  return u;
}

namespace {
// The rows of table that u reads: (T_used, ...), or table itself when it reads all.
Tensor read_rows(const Tensor& table, const UsedRows& u) {
  return u.rows.defined() ? index_select(table, 0, u.rows) : table;
}
}  // namespace

ShawTerm::ShawTerm(RelIndex idx, int64_t dim_head, bool values) : index(std::move(idx)), used(used_rows({index})) {
  table_k = add_param("table_k", zeros({index.T, dim_head}), /*decay=*/false);
  init_trunc_normal(table_k, 0.02);
  if (values) {
    table_v = add_param("table_v", zeros({index.T, dim_head}), /*decay=*/false);
    init_trunc_normal(table_v, 0.02);
  }
  add_index("index", index);
  add_used(used, {"index"});
}

Tensor ShawTerm::logits_term(const Tensor& q, const Tensor& k) {
  const double scale = 1.0 / std::sqrt((double)q.size(-1));
  Tensor rk = read_rows(table_k, used);                                                  // (T_used,HD)
  return rel_logits_gather(matmul(q * scale, transpose(rk, 0, 1)), used.index[0]);  // (B,NH,N,T_used) -> (B,NH,N,N)
}

Tensor ShawTerm::output_term(const Tensor& attn, const Tensor& v) {
  return matmul(rel_logits_scatter(attn, used.index[0]), read_rows(table_v, used));  // (B,NH,N,T_used) (T_used,HD)
}

IrpeContextTerm::IrpeContextTerm(std::vector<RelIndex> idx, int64_t th, int64_t dim_head, const std::string& on)
    : indexes(std::move(idx)) {
  for (size_t p = 0; p < indexes.size(); ++p) {
    const RelIndex& r = indexes[p];
    const std::string sfx = indexes.size() > 1 ? "_" + std::to_string(p) : "";
    // iRPE: zero-initialised tables
    if (on.find('q') != std::string::npos)
      table_q.push_back(add_param("table_q" + sfx, zeros({th, dim_head, r.T}), /*decay=*/false));
    if (on.find('k') != std::string::npos)
      table_k.push_back(add_param("table_k" + sfx, zeros({th, dim_head, r.T}), /*decay=*/false));
    if (on.find('v') != std::string::npos)
      table_v.push_back(add_param("table_v" + sfx, zeros({th, r.T, dim_head}), /*decay=*/false));
    add_index("index" + sfx, r);
  }
}

Tensor IrpeContextTerm::logits_term(const Tensor& q, const Tensor& k) {
  const double scale = 1.0 / std::sqrt((double)q.size(-1));
  Tensor out;
  auto add = [&](const Tensor& t) { out = out.defined() ? out + t : t; };
  for (size_t p = 0; p < indexes.size(); ++p) {
    if (!table_k.empty()) add(rel_logits_gather(matmul(q * scale, table_k[p]), indexes[p]));  // (B,NH,N,T) -> [i,j]
    if (!table_q.empty())  // iRPE's rpe_q(k * scale).transpose: [i,j] = k_j . r^Q_b(j,i)
      add(transpose(rel_logits_gather(matmul(k * scale, table_q[p]), indexes[p]), -2, -1));
  }
  return out;
}

Tensor IrpeContextTerm::output_term(const Tensor& attn, const Tensor& v) {
  Tensor out;
  for (size_t p = 0; p < indexes.size(); ++p) {
    Tensor t = matmul(rel_logits_scatter(attn, indexes[p]), table_v[p]);  // (B,NH,N,T) (NH|1,T,HD)
    out = out.defined() ? out + t : t;
  }
  return out;
}

Tensor key_padding_bias(const Tensor& lengths, int64_t n, int64_t skip) {
  PW_CHECK(lengths.dim() == 1, "key_padding_bias: expected lengths (B), got ", lengths.str());
  std::vector<double> len = lengths.cpu().to_vector();
  const int64_t B = (int64_t)len.size();
  std::vector<double> b(B * n * n, 0.0);
  for (int64_t s = 0; s < B; ++s) {
    PW_CHECK(len[s] >= 1 && skip + (int64_t)len[s] <= n, "key_padding_bias: length ", (int64_t)len[s], " of sample ",
             s, " outside [1, ", n - skip, "] for ", n, " tokens (", skip, " leading)");
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = skip + (int64_t)len[s]; j < n; ++j) b[(s * n + i) * n + j] = -1e9;
  }
  return from_vector(b, {B, 1, n, n});
}

KeyPaddingTerm::KeyPaddingTerm(std::shared_ptr<AttentionTerm> in, int64_t skip) : inner(std::move(in)), skip(skip) {
  if (inner) add_module("inner", inner);
}

void KeyPaddingTerm::set_lengths(const Tensor& lengths, int64_t n, Device d) {
  mask = lengths.defined() ? key_padding_bias(lengths, n, skip).to(d) : Tensor();
}

Tensor KeyPaddingTerm::static_bias() {
  if (inner && inner->has_logits_term()) {
    Tensor b = inner->static_bias();
    if (!b.defined()) return Tensor();  // the inner term reads q, k: op by op
    return mask.defined() ? b + mask.to(b.dtype()) : b;
  }
  return mask;
}

Tensor KeyPaddingTerm::logits_term(const Tensor& q, const Tensor& k) {
  Tensor t = inner && inner->has_logits_term() ? inner->logits_term(q, k) : Tensor();
  if (!mask.defined()) return t;
  Tensor m = mask.dtype() == q.dtype() ? mask : mask.to(q.dtype());
  return t.defined() ? t + m : m;
}

SasaTerm::SasaTerm(int64_t h, int64_t w, int64_t dim_head, int64_t K, int64_t skip)
    : h(h), w(w), kernel(K), skip(skip) {
  PW_CHECK(K % 2 == 1, "SasaTerm: model.sasa_kernel must be odd (a window centred on its patch), got ", K);
  PW_CHECK(dim_head % 2 == 0, "SasaTerm: model.dim_head must be even (half for row, half for column offsets), got ",
           dim_head);
  row = add_param("row", zeros({K, dim_head / 2}), /*decay=*/false);
  col = add_param("col", zeros({K, dim_head / 2}), /*decay=*/false);
  init_trunc_normal(row, 0.02);
  init_trunc_normal(col, 0.02);
}

void SasaTerm::build_masked(Device d) {
  const int64_t N = h * w, M = N + skip, r = kernel / 2;
  std::vector<int64_t> ir(M * M, -1), ic(M * M, -1);
  std::vector<double> m(M * M, 0.0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const int64_t dr = j / w - i / w, dc = j % w - i % w, e = (i + skip) * M + j + skip;
      if (std::abs(dr) <= r && std::abs(dc) <= r) {
        ir[e] = dr + r;
        ic[e] = dc + r;
      } else {
        m[e] = -1e9;
      }
    }
  index_row_ = RelIndex::build(ir, M, kernel, d);
  index_col_ = RelIndex::build(ic, M, kernel, d);
  add_index("index_row", index_row_);
  add_index("index_col", index_col_);
  mask_ = add_constant("mask", from_vector(m, {M, M}).to(d));
}

Tensor SasaTerm::attend(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (masked) return Tensor();
  auto same = [&](const Tensor& t) { return t.dtype() == q.dtype() ? t : t.to(q.dtype()); };
  return local_attention_rel(q, k, v, same(row), same(col), h, w, kernel, skip);
}

Tensor SasaTerm::logits_term(const Tensor& q, const Tensor& k) { return masked_logits(q, row, col); }

Tensor SasaTerm::masked_logits(const Tensor& q, const Tensor& r, const Tensor& c) {
  if (!mask_.defined()) build_masked(q.device());
  const int64_t half = q.size(-1) / 2;
  Tensor qs = q * (1.0 / std::sqrt((double)q.size(-1)));
  Tensor a = rel_logits_gather(matmul(narrow(qs, 3, 0, half), transpose(r, 0, 1)), index_row_);     // (B,NH,M,M)
  Tensor b = rel_logits_gather(matmul(narrow(qs, 3, half, half), transpose(c, 0, 1)), index_col_);  // (B,NH,M,M)
  return a + b + (mask_.dtype() == q.dtype() ? mask_ : mask_.to(q.dtype()));
}

Tensor SasaTerm::masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& r,
                                  const Tensor& c) {
  Tensor logits = matmul(q * (1.0 / std::sqrt((double)q.size(-1))), transpose(k, -2, -1));  // (B,NH,M,M)
  logits = logits + masked_logits(q, r.defined() ? r : row, c.defined() ? c : col);
  return matmul(softmax(logits, -1), v);  // (B,NH,M,HD)
}

XlTerm::XlTerm(int64_t n, int64_t heads, int64_t dim_head, int64_t skip) : heads(heads), dim_head(dim_head) {
  const int64_t M = n + skip, D = heads * dim_head;
  w_r = add_module("w_r", std::make_shared<Linear>(D, D, /*with_bias=*/false));
  u = add_param("u", zeros({heads, dim_head}), /*decay=*/false);
  v = add_param("v", zeros({heads, dim_head}), /*decay=*/false);
  init_trunc_normal(u, 0.02);  // XL's init: N(0, 0.02)
  init_trunc_normal(v, 0.02);
  r = add_constant("r", xl_relative_sinusoid(M, D));
  if (skip > 0) {
    std::vector<double> m(M * M, 1.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < M; ++j)
        if (i < skip || j < skip) m[i * M + j] = 0.0;
    mask = add_constant("mask", from_vector(m, {M, M}));
  }
}

Tensor XlTerm::logits_term(const Tensor& q, const Tensor& k) {
  const int64_t M = q.size(-2), built = (r.size(0) + 1) / 2;
  // without a class token any length works (XL on sequences of another length: R recomputed)
  PW_CHECK(M == built || !mask.defined(), "XlTerm: built for ", built, " tokens with a class token, got q ", q.str(),
           "; the model's image size differs from the one the term was built for");
  const int64_t R = 2 * M - 1;
  const double scale = 1.0 / std::sqrt((double)dim_head);
  Tensor rr = M == built ? r : xl_relative_sinusoid(M, heads * dim_head).to(q.device());
  if (rr.dtype() != q.dtype()) rr = rr.to(q.dtype());
  Tensor rk = permute((*w_r)(rr).reshape({R, heads, dim_head}), {1, 2, 0});  // (NH,HD,2M-1)
  Tensor bd = rel_shift(matmul(q + v.reshape({1, heads, 1, dim_head}), rk));  // (B,NH,M,2M-1) -> (B,NH,M,M)
  if (mask.defined()) bd = bd * (mask.dtype() == q.dtype() ? mask : mask.to(q.dtype()));
  Tensor c = matmul(u.reshape({1, heads, 1, dim_head}), transpose(k, -2, -1));  // (B,NH,1,M)
  return (bd + c) * scale;
}

HuangTerm::HuangTerm(RelIndex idx, RelIndex idx_t, int64_t dim_head)
    : index(std::move(idx)), index_t(std::move(idx_t)), used(used_rows({index, index_t})) {
  table = add_param("table", zeros({index.T, dim_head}), /*decay=*/false);
  init_trunc_normal(table, 0.02);
  add_index("index", index);
  add_index("index_t", index_t);
  add_used(used, {"index", "index_t"});
}

Tensor HuangTerm::logits_term(const Tensor& q, const Tensor& k) {
  const double scale = 1.0 / std::sqrt((double)q.size(-1));
  Tensor pt = transpose(read_rows(table, used), 0, 1);             // (HD,T_used)
  Tensor qp = rel_logits_gather(matmul(q, pt), used.index[0]);     // q_i . p_idx(i,j)      (B,NH,N,N)
  Tensor kp = rel_logits_gather(matmul(k, pt), used.index[1]);     // [j,i] = k_j . p_idx(i,j)
  return (qp + transpose(kp, -2, -1)) * scale;
}

std::shared_ptr<AttentionTerm> make_rel_pos(const RelPosOptions& o, int64_t h, int64_t w, int64_t heads,
                                            int64_t dim_head, int64_t skip) {
  const int64_t N = h * w, M = N + skip;
  if (o.kind == "none") return nullptr;
  if (o.kind == "swin") {
    auto t = std::make_shared<RelTableBias>();
    t->add_table("table", RelIndex::build(with_skip(swin_relative_index(h, w), N, skip, -1), M, (2 * h - 1) * (2 * w - 1)),
                 heads, 0.02);
    return t;
  }
  if (o.kind == "irpe") {
    const double alpha = o.irpe_ratio, beta = 2 * o.irpe_ratio, gamma = 8 * o.irpe_ratio;
    const int64_t th = o.irpe_shared_head ? 1 : heads;
    auto bucket = [&](const std::string& method) {
      int64_t T = 0;
      std::vector<int64_t> idx = irpe_bucket_index(method, h, w, alpha, beta, gamma, &T);
      // iRPE's skip: one extra bucket for every pair with a class token
      if (skip > 0) idx = with_skip(idx, N, skip, T++);
      return RelIndex::build(idx, M, T);
    };
    std::vector<std::pair<std::string, std::string>> parts = {{"table", o.irpe_method}};
    if (o.irpe_method == "cross") parts = {{"table_rows", "cross_rows"}, {"table_cols", "cross_cols"}};
    if (o.irpe_mode == "contextual") {
      std::vector<RelIndex> idx;
      for (auto& [name, method] : parts) idx.push_back(bucket(method));
      return std::make_shared<IrpeContextTerm>(std::move(idx), th, dim_head, o.irpe_on);
    }
    PW_CHECK(o.irpe_mode == "bias", "make_rel_pos: unknown model.irpe_mode '", o.irpe_mode, "' (bias or contextual)");
    PW_CHECK(o.irpe_on == "k", "make_rel_pos: model.irpe_on: ", o.irpe_on, " needs model.irpe_mode: contextual (the "
             "bias mode is one scalar per bucket on the logits; set irpe_on: k or irpe_mode: contextual)");
    auto t = std::make_shared<RelTableBias>();
    for (auto& [name, method] : parts) t->add_table(name, bucket(method), th, 0.0);  // iRPE: zero-initialised
    return t;
  }
  if (o.kind == "alibi") return std::make_shared<FixedBias>(alibi_bias_2d(h, w, heads, o.alibi_distance, skip));
  if (o.kind == "rope2d")
    return std::make_shared<RotaryQK>(rope_axial_angles(h, w, dim_head, o.rope_base, skip), M, dim_head / 2, heads);
  if (o.kind == "shaw") {
    const int64_t S = 2 * o.clip + 1;
    return std::make_shared<ShawTerm>(
        RelIndex::build(with_skip(shaw_relative_index(h, w, o.clip), N, skip, -1), M, S * S), dim_head,
        o.shaw_values);
  }
  if (o.kind == "xl") return std::make_shared<XlTerm>(N, heads, dim_head, skip);
  if (o.kind == "huang") {
    const int64_t S = 2 * o.clip + 1;
    std::vector<int64_t> idx = with_skip(shaw_relative_index(h, w, o.clip), N, skip, -1), idx_t(M * M);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < M; ++j) idx_t[j * M + i] = idx[i * M + j];
    return std::make_shared<HuangTerm>(RelIndex::build(idx, M, S * S), RelIndex::build(idx_t, M, S * S), dim_head);
  }
  PW_FAIL("make_rel_pos: unknown rel_pos '", o.kind, "' (none, swin, alibi, rope2d, shaw, irpe, xl, huang)");
}

}  // namespace pw
