// Relative position encodings (nn/posenc.h): the index tables against the papers'
// formulas on small grids (values worked out by hand here), shift invariance of every
// encoding, Shaw's key and value terms against a by-hand sum, the class-token rows,
// the config keys, and that every encoding trains (a few dozen steps lower the loss).
// The ops' gradient checks, PyTorch values and parity are rows in tests/ops/posenc.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>
#include <map>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "nn/posenc.h"
#include "nn/vit.h"
#include "tests/gradcheck.h"
#include "trainers/config.h"
#include "trainers/optim.h"

using namespace pw;
using pw::test::check_close;

namespace {

using Idx = std::vector<int64_t>;

// Every pair of pairs (i,j), (i2,j2) on an h x w grid with p_i2 = p_i + s and p_j2 = p_j + s.
template <class F>
void for_shifted_pairs(int64_t h, int64_t w, F f) {  // f(i, j, i2, j2)
  const int64_t N = h * w;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t sr = -(h - 1); sr < h; ++sr)
        for (int64_t sc = -(w - 1); sc < w; ++sc) {
          const int64_t ri = i / w + sr, ci = i % w + sc, rj = j / w + sr, cj = j % w + sc;
          if (ri < 0 || ri >= h || ci < 0 || ci >= w || rj < 0 || rj >= h || cj < 0 || cj >= w) continue;
          f(i, j, ri * w + ci, rj * w + cj);
        }
}

// (1,NH,N,HD) x3 -> (3,1,NH,N,HD)
Tensor stack_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  Shape s = q.shape();
  s.insert(s.begin(), 1);
  return concat({q.reshape(s), k.reshape(s), v.reshape(s)}, 0);
}

// kind "irpe_ctx": irpe, contextual on q, k and v
RelPosOptions rel(const std::string& kind, const std::string& irpe_method = "product") {
  RelPosOptions o;
  o.kind = kind;
  if (kind == "sasa") o.kind = "none";  // model.attention: sasa (the tests set it)
  if (kind == "irpe_ctx") {
    o.kind = "irpe";
    o.irpe_mode = "contextual";
    o.irpe_on = "qkv";
  }
  o.irpe_method = irpe_method;
  o.clip = 2;
  o.irpe_shared_head = false;
  return o;
}

}  // namespace

TEST_CASE("Swin's relative position index on a 2x2 window is the paper's table") {
  // Swin: (dy + M-1) * (2M-1) + (dx + M-1), (dy, dx) = p_i - p_j, M = 2
  CHECK(swin_relative_index(2, 2) == Idx{4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4});
  // 2x3: (dy + 1) * 5 + (dx + 2), in [0, 15)
  Idx s = swin_relative_index(2, 3);
  CHECK(s[0 * 6 + 5] == (0 - 1 + 1) * 5 + (0 - 2 + 2));  // (0,0) to (1,2)
  CHECK(s[5 * 6 + 0] == (1 + 1) * 5 + (2 + 2));          // (1,2) to (0,0): the last row of the table
  CHECK(*std::max_element(s.begin(), s.end()) == 14);
}

TEST_CASE("Shaw's clipped 2D index") {
  // k = 1 on a 1x4 row: (clip(dr)+1)*3 + clip(dc)+1 with dr = 0, dc = j - i clipped to [-1, 1]
  CHECK(shaw_relative_index(1, 4, 1) == Idx{4, 5, 5, 5, 3, 4, 5, 5, 3, 3, 4, 5, 3, 3, 3, 4});
  // k = 2 on 3x3: (0,0) to (2,2) is (+2,+2): 4*5+4 = 24; (2,2) to (0,0): 0; self: 12
  Idx s = shaw_relative_index(3, 3, 2);
  CHECK(s[0 * 9 + 8] == 24);
  CHECK(s[8 * 9 + 0] == 0);
  CHECK(s[4 * 9 + 4] == 12);
}

TEST_CASE("iRPE's piecewise index g and its buckets (alpha 1.9, beta 3.8, gamma 15.2)") {
  const double a = 1.9, b = 3.8, g = 15.2;
  // |x| <= alpha: round half to even; beyond: 1.9 + ln(|x|/1.9)/ln(8) * 1.9, rounded, at most 3.8, truncated
  CHECK(irpe_piecewise(0, a, b, g) == 0);
  CHECK(irpe_piecewise(0.5, a, b, g) == 0);
  CHECK(irpe_piecewise(1.5, a, b, g) == 2);
  CHECK(irpe_piecewise(-1, a, b, g) == -1);
  CHECK(irpe_piecewise(2, a, b, g) == 2);    // 1.947
  CHECK(irpe_piecewise(3, a, b, g) == 2);    // 2.317
  CHECK(irpe_piecewise(4, a, b, g) == 3);    // 2.580
  CHECK(irpe_piecewise(-8, a, b, g) == -3);  // -3.213
  CHECK(irpe_piecewise(18, a, b, g) == 3);   // 3.954 -> 4 -> 3.8 -> 3
  CHECK(irpe_piecewise(-100, a, b, g) == -3);

  int64_t T = 0;
  // product on 4x4: (g(dr)+3)*7 + g(dc)+3, diff = p_i - p_j
  Idx p = irpe_bucket_index("product", 4, 4, a, b, g, &T);
  CHECK(T == 49);
  CHECK(p[0 * 16 + 15] == (-2 + 3) * 7 + (-2 + 3));  // (0,0)-(3,3) = (-3,-3)
  CHECK(p[15 * 16 + 0] == 5 * 7 + 5);
  CHECK(p[5 * 16 + 5] == 24);
  CHECK(p[1 * 16 + 0] == 3 * 7 + 4);  // (0,1)-(0,0) = (0,+1)
  // euclidean: g(round(sqrt(dr^2 + dc^2))) + 3
  Idx e = irpe_bucket_index("euclidean", 4, 4, a, b, g, &T);
  CHECK(T == 7);
  CHECK(e[0 * 16 + 15] == 3 + 3);  // sqrt 18 = 4.24 -> 4 -> g 3
  CHECK(e[0 * 16 + 2] == 2 + 3);   // 2 -> g 2
  CHECK(e[0 * 16 + 5] == 1 + 3);   // sqrt 2 -> 1
  CHECK(e[6 * 16 + 6] == 3);
  // quantized (iRPE's code): g(dr^2 + dc^2) + 3
  Idx q = irpe_bucket_index("quantized", 4, 4, a, b, g, &T);
  CHECK(q[0 * 16 + 1] == 1 + 3);
  CHECK(q[0 * 16 + 5] == 2 + 3);
  CHECK(q[0 * 16 + 15] == 3 + 3);
  // cross: one table per axis, g(dr) + 3 and g(dc) + 3
  Idx cr = irpe_bucket_index("cross_rows", 4, 4, a, b, g, &T), cc = irpe_bucket_index("cross_cols", 4, 4, a, b, g, &T);
  CHECK(cr[12 * 16 + 0] == 2 + 3);  // (3,0)-(0,0): dr = 3 -> 2
  CHECK(cc[12 * 16 + 0] == 3);
  // iRPE's skip: the class token's row and column take one extra bucket
  Idx s = with_skip(Idx{0, 1, 2, 3}, 2, 1, 49);
  CHECK(s == Idx{49, 49, 49, 49, 0, 1, 49, 2, 3});
}

TEST_CASE("ALiBi's head slopes") {
  std::vector<double> s8 = alibi_slopes(8), s6 = alibi_slopes(6);
  for (int i = 0; i < 8; ++i) CHECK(s8[i] == doctest::Approx(std::pow(0.5, i + 1)));
  // 6 heads: the 4-head slopes 1/4 .. 1/256, then every other of the 8-head slopes
  CHECK(s6 == std::vector<double>{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125});
  Tensor b = alibi_bias_2d(2, 2, 2, "manhattan", 1);  // (2, 5, 5), class token first
  std::vector<double> v = b.to_vector();
  CHECK(v[0 * 25 + 0 * 5 + 3] == 0);           // class token row
  CHECK(v[0 * 25 + 1 * 5 + 4] == -0.0625 * 2);  // head 0, slope 2^-4; patches (0,0) and (1,1): distance 2
}

TEST_CASE("every relative encoding gives the same logits to a pair under a common shift") {
  for (auto [kind, method] : std::vector<std::pair<std::string, std::string>>{{"swin", ""},
                                                                             {"alibi", ""},
                                                                             {"rope2d", ""},
                                                                             {"shaw", ""},
                                                                             {"irpe", "product"},
                                                                             {"irpe", "euclidean"},
                                                                             {"irpe", "quantized"},
                                                                             {"irpe", "cross"},
                                                                             {"xl", ""},
                                                                             {"huang", ""},
                                                                             {"irpe_ctx", "product"},
                                                                             {"irpe_ctx", "cross"}}) {
    const std::string kind_ = kind, method_ = method;  // clang < 16 can't capture bindings
    CAPTURE(kind_);
    CAPTURE(method_);
    RelPosOptions o = rel(kind, method.empty() ? "product" : method);
    const int64_t h = 3, w = 4;
    std::shared_ptr<AttentionTerm> t = make_rel_pos(o, h, w, 2, 8, 0);
    // learned tables start at zero (iRPE) or tiny: make them visible
    for (const Param& p : t->parameters()) init_uniform(const_cast<Tensor&>(p.tensor), -1, 1);
    std::vector<double> add;
    {
      const int64_t N = h * w, NH = 2, HD = 8;
      Tensor q1 = normal({1, 1, 1, HD}, 0, 1), k1 = normal({1, 1, 1, HD}, 0, 1);
      Tensor q = expand(q1, {1, NH, N, HD}).clone(), k = expand(k1, {1, NH, N, HD}).clone();
      Tensor a;
      if (kind == "rope2d") {
        Tensor qkv = permute(stack_qkv(q, k, zeros({1, NH, N, HD})), {1, 3, 0, 2, 4}).reshape({1, N, 3 * NH * HD});
        Tensor r = permute(t->qkv_term(qkv).reshape({1, N, 3, NH, HD}), {2, 0, 3, 1, 4});
        std::vector<Tensor> p = chunk(r, 3, 0);
        a = matmul(p[0].reshape({1, NH, N, HD}), transpose(p[1].reshape({1, NH, N, HD}), -2, -1));
      } else {
        a = t->logits_term(q, k);
      }
      add = a.to_vector();
      add.resize(N * N);  // head 0
      // not constant: the encoding does tell positions apart
      CHECK(*std::max_element(add.begin(), add.end()) > *std::min_element(add.begin(), add.end()) + 1e-4);
    }
    const int64_t N = h * w;
    int64_t pairs = 0;
    for_shifted_pairs(h, w, [&](int64_t i, int64_t j, int64_t i2, int64_t j2) {
      ++pairs;
      if (std::abs(add[i * N + j] - add[i2 * N + j2]) > 1e-5) {
        FAIL_CHECK("pair (", i, ",", j, ") and its shift (", i2, ",", j2, "): ", add[i * N + j], " vs ",
                   add[i2 * N + j2]);
      }
    });
    CHECK(pairs > N * N);
  }
}

TEST_CASE("Shaw's key and value terms equal the by-hand sums; the class token gets none") {
  const int64_t h = 2, w = 3, N = h * w, M = N + 1, B = 2, NH = 2, HD = 4, D = 8;
  RelPosOptions o = rel("shaw");
  o.clip = 1;
  Attention attn(D, NH, HD, true);
  auto t = std::dynamic_pointer_cast<ShawTerm>(make_rel_pos(o, h, w, NH, HD, 1));
  REQUIRE(t);
  init_uniform(t->table_k, -1, 1);
  init_uniform(t->table_v, -1, 1);
  attn.set_term(t);
  Tensor x = normal({B, M, D}, 0, 1);
  // by hand: logits + scale q_i . rK[idx], probabilities a, o_i = sum_j a_ij (v_j + rV[idx])
  Tensor qkv = linear(x, attn.qkv->weight, attn.qkv->bias);  // (B,M,3,NH,HD)
  std::vector<double> Q = qkv.to_vector(), RK = t->table_k.to_vector(), RV = t->table_v.to_vector();
  std::vector<double> I = t->index.idx.to_vector();
  const double scale = 1 / std::sqrt((double)HD);
  std::vector<double> out(B * M * NH * HD, 0.0);
  auto at = [&](int64_t b, int64_t n, int64_t part, int64_t hh, int64_t d) {
    return Q[(((b * M + n) * 3 + part) * NH + hh) * HD + d];
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hh = 0; hh < NH; ++hh)
      for (int64_t i = 0; i < M; ++i) {
        std::vector<double> l(M);
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < M; ++j) {
          double s = 0;
          for (int64_t d = 0; d < HD; ++d) {
            const int64_t r = (int64_t)I[i * M + j];
            s += at(b, i, 0, hh, d) * (at(b, j, 1, hh, d) + (r < 0 ? 0.0 : RK[r * HD + d]));
          }
          l[j] = s * scale;
          mx = std::max(mx, l[j]);
        }
        for (auto& e : l) z += (e = std::exp(e - mx));
        for (int64_t j = 0; j < M; ++j) {
          const int64_t r = (int64_t)I[i * M + j];
          for (int64_t d = 0; d < HD; ++d)
            out[((b * M + i) * NH + hh) * HD + d] += l[j] / z * (at(b, j, 2, hh, d) + (r < 0 ? 0.0 : RV[r * HD + d]));
        }
      }
  Tensor ref = linear(from_vector(out, {B, M, NH * HD}), attn.proj->weight, attn.proj->bias);
  check_close(attn(x).to_vector(), ref.to_vector(), 1e-5, 1e-4, "shaw attention");
  // the class token (row and column 0) has no relative position
  for (int64_t j = 0; j < M; ++j) {
    CHECK(I[j] == -1);
    CHECK(I[j * M] == -1);
  }
}

TEST_CASE("rel_shift is Transformer-XL's pad/reshape/slice trick and the direct formula x[i, j + N-1-i]") {
  for (int64_t N : {1, 2, 5}) {
    CAPTURE(N);
    Tensor x = normal({2, 3, N, 2 * N - 1}, 0, 1);
    // XL's _rel_shift: zero column in front, view (2N, N), drop the first row, view (N, 2N-1), first N columns
    Tensor p = concat({zeros({2, 3, N, 1}), x}, -1).reshape({2, 3, 2 * N, N});
    Tensor trick = narrow(narrow(p, 2, 1, 2 * N - 1).reshape({2, 3, N, 2 * N - 1}), 3, 0, N);
    Tensor y = rel_shift(x);
    CHECK(y.to_vector() == trick.to_vector());
    std::vector<double> xv = x.to_vector(), yv = y.to_vector();
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j)  // column c holds distance N-1-c; distance i-j is c = N-1-i+j
          CHECK(yv[(r * N + i) * N + j] == xv[(r * N + i) * (2 * N - 1) + (N - 1 - i + j)]);
  }
}

TEST_CASE("Transformer-XL's terms (b)+(c)+(d) equal the direct O(N^2) sum; 1D sequences and the class token") {
  // grids: a 1 x 5 sequence (Conformer's use), a 2 x 3 image, and the same with a class token
  for (auto [h, w, skip] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 5, 0}, {2, 3, 0}, {2, 3, 1}}) {
    const int64_t h_ = h, w_ = w, skip_ = skip;
    CAPTURE(h_);
    CAPTURE(w_);
    CAPTURE(skip_);
    const int64_t NH = 2, HD = 4, D = NH * HD, M = h * w + skip, B = 2;
    RelPosOptions o = rel("xl");
    auto t = std::dynamic_pointer_cast<XlTerm>(make_rel_pos(o, h, w, NH, HD, skip));
    REQUIRE(t);
    Tensor q = normal({B, NH, M, HD}, 0, 1), k = normal({B, NH, M, HD}, 0, 1);
    init_uniform(t->u, -1, 1);
    init_uniform(t->v, -1, 1);
    std::vector<double> got = t->logits_term(q, k).to_vector();
    REQUIRE(got.size() == (size_t)(B * NH * M * M));
    std::vector<double> Q = q.to_vector(), K = k.to_vector(), W = t->w_r->weight.to_vector(), U = t->u.to_vector(),
                        V = t->v.to_vector();
    const double scale = 1 / std::sqrt((double)HD);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hh = 0; hh < NH; ++hh)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < M; ++j) {
            // R_{i-j}: sin block then cos block over D, projected: (W_R R)[hh*HD + d]
            const double dist = (double)(i - j);
            std::vector<double> R(D), WR(D, 0.0);
            for (int64_t m = 0; m < D / 2; ++m) {
              const double f = 1.0 / std::pow(10000.0, 2.0 * m / D);
              R[m] = std::sin(dist * f);
              R[D / 2 + m] = std::cos(dist * f);
            }
            for (int64_t a = 0; a < D; ++a)
              for (int64_t c = 0; c < D; ++c) WR[a] += W[a * D + c] * R[c];
            const bool pos = i >= skip && j >= skip;
            double s = 0;
            for (int64_t d = 0; d < HD; ++d) {
              const double qi = Q[((b * NH + hh) * M + i) * HD + d], kj = K[((b * NH + hh) * M + j) * HD + d];
              const double wr = WR[hh * HD + d];
              s += U[hh * HD + d] * kj;                                  // (c)
              if (pos) s += qi * wr + V[hh * HD + d] * wr;               // (b) + (d)
            }
            const double g = got[((b * NH + hh) * M + i) * M + j];
            if (std::abs(g - s * scale) > 1e-5 * (1 + std::abs(s))) FAIL_CHECK("(", i, ",", j, "): ", g, " vs ", s * scale);
          }
    // the weights get gradients
    Tensor loss = sum(t->logits_term(q, k) * normal({B, NH, M, M}, 0, 1));
    loss.backward();
    CHECK(t->w_r->weight.grad().defined());
    CHECK(t->u.grad().defined());
    CHECK(t->v.grad().defined());
  }
}

TEST_CASE("Huang et al.'s method 4: q.k + term = (q + p_ij).(k + p_ij) - p_ij.p_ij") {
  const int64_t h = 2, w = 3, N = h * w, M = N + 1, B = 2, NH = 2, HD = 4;
  RelPosOptions o = rel("huang");
  o.clip = 1;
  auto t = std::dynamic_pointer_cast<HuangTerm>(make_rel_pos(o, h, w, NH, HD, 1));
  REQUIRE(t);
  init_uniform(t->table, -1, 1);
  Tensor q = normal({B, NH, M, HD}, 0, 1), k = normal({B, NH, M, HD}, 0, 1);
  const double scale = 1 / std::sqrt((double)HD);
  std::vector<double> got = (matmul(q, transpose(k, -2, -1)) * scale + t->logits_term(q, k)).to_vector();
  std::vector<double> Q = q.to_vector(), K = k.to_vector(), P = t->table.to_vector(), I = t->index.idx.to_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hh = 0; hh < NH; ++hh)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < M; ++j) {
          const int64_t r = (int64_t)I[i * M + j];
          if (i == 0 || j == 0) CHECK(r == -1);  // the class token: no p
          double s = 0;
          for (int64_t d = 0; d < HD; ++d) {
            const double p = r < 0 ? 0.0 : P[r * HD + d];
            const double qi = Q[((b * NH + hh) * M + i) * HD + d], kj = K[((b * NH + hh) * M + j) * HD + d];
            s += (qi + p) * (kj + p) - p * p;
          }
          const double g = got[((b * NH + hh) * M + i) * M + j];
          if (std::abs(g - s * scale) > 1e-5 * (1 + std::abs(s))) FAIL_CHECK("(", i, ",", j, "): ", g, " vs ", s * scale);
        }
}

TEST_CASE("Shaw and Huang read only the table rows the grid uses: the same values and gradients as the whole table") {
  const int64_t h = 2, w = 3, M = h * w + 1, B = 2, NH = 2, HD = 4;
  const double scale = 1 / std::sqrt((double)HD);
  Tensor q = normal({B, NH, M, HD}, 0, 1), k = normal({B, NH, M, HD}, 0, 1);
  Tensor attn = softmax(normal({B, NH, M, M}, 0, 1), -1), gl = normal({B, NH, M, M}, 0, 1);
  Tensor go = normal({B, NH, M, HD}, 0, 1);
  // both sides' loss and the tables' gradients: {values..., gradients...}
  auto run = [&](const std::vector<Tensor>& tables, const std::function<Tensor()>& loss) {
    for (Tensor t : tables) t.zero_grad();
    Tensor l = loss();
    l.backward();
    std::vector<double> out = {l.item()};
    for (const Tensor& t : tables) {
      std::vector<double> g = t.grad().to_vector();
      out.insert(out.end(), g.begin(), g.end());
    }
    return out;
  };
  SUBCASE("shaw") {
    RelPosOptions o = rel("shaw");
    o.clip = 4;  // (2*4+1)^2 = 81 rows; a 2x3 grid reads 3 x 5 of them
    auto t = std::dynamic_pointer_cast<ShawTerm>(make_rel_pos(o, h, w, NH, HD, 1));
    REQUIRE(t);
    REQUIRE(t->used.rows.defined());
    CHECK(t->table_k.size(0) == 81);
    CHECK(t->used.rows.numel() == 15);
    CHECK(t->used.index[0].T == 15);
    init_uniform(t->table_k, -1, 1);
    init_uniform(t->table_v, -1, 1);
    std::vector<double> got = run({t->table_k, t->table_v}, [&] {
      return sum(t->logits_term(q, k) * gl) + sum(t->output_term(attn, Tensor()) * go);
    });
    std::vector<double> want = run({t->table_k, t->table_v}, [&] {
      Tensor l = rel_logits_gather(matmul(q * scale, transpose(t->table_k, 0, 1)), t->index);
      Tensor o = matmul(rel_logits_scatter(attn, t->index), t->table_v);
      return sum(l * gl) + sum(o * go);
    });
    check_close(got, want, 1e-5, 1e-4, "shaw: used rows vs the whole table");
  }
  SUBCASE("huang") {
    RelPosOptions o = rel("huang");
    o.clip = 4;
    auto t = std::dynamic_pointer_cast<HuangTerm>(make_rel_pos(o, h, w, NH, HD, 1));
    REQUIRE(t);
    REQUIRE(t->used.rows.defined());
    CHECK(t->used.rows.numel() == 15);
    init_uniform(t->table, -1, 1);
    std::vector<double> got = run({t->table}, [&] { return sum(t->logits_term(q, k) * gl); });
    std::vector<double> want = run({t->table}, [&] {
      Tensor pt = transpose(t->table, 0, 1);
      Tensor qp = rel_logits_gather(matmul(q, pt), t->index), kp = rel_logits_gather(matmul(k, pt), t->index_t);
      return sum((qp + transpose(kp, -2, -1)) * scale * gl);
    });
    check_close(got, want, 1e-5, 1e-4, "huang: used rows vs the whole table");
  }
  SUBCASE("a grid as large as the clipping window reads every row: nothing renumbered") {
    RelPosOptions o = rel("shaw");
    o.clip = 1;
    auto t = std::dynamic_pointer_cast<ShawTerm>(make_rel_pos(o, h, w, NH, HD, 1));
    REQUIRE(t);
    CHECK_FALSE(t->used.rows.defined());
    CHECK(t->used.index[0].T == t->table_k.size(0));
  }
}

TEST_CASE("iRPE contextual on q, k and v equals the by-hand sums (iRPE's rpe_k(q), rpe_q(k)^T, rpe_v(attn))") {
  for (const std::string method : {"product", "cross"}) {
    CAPTURE(method);
    const int64_t h = 2, w = 3, N = h * w, M = N + 1, B = 2, NH = 2, HD = 4, D = 8;
    RelPosOptions o = rel("irpe_ctx", method);
    o.irpe_ratio = 0.5;  // small buckets: offsets up to 2 are told apart
    Attention attn(D, NH, HD, true);
    auto t = std::dynamic_pointer_cast<IrpeContextTerm>(make_rel_pos(o, h, w, NH, HD, 1));
    REQUIRE(t);
    REQUIRE(t->table_q.size() == (method == "cross" ? 2u : 1u));
    for (const Param& p : t->parameters()) init_uniform(const_cast<Tensor&>(p.tensor), -1, 1);
    attn.set_term(t);
    Tensor x = normal({B, M, D}, 0, 1);
    Tensor qkv = linear(x, attn.qkv->weight, attn.qkv->bias);  // (B,M,3,NH,HD)
    std::vector<double> Q = qkv.to_vector();
    auto at = [&](int64_t b, int64_t n, int64_t part, int64_t hh, int64_t d) {
      return Q[(((b * M + n) * 3 + part) * NH + hh) * HD + d];
    };
    const double scale = 1 / std::sqrt((double)HD);
    std::vector<double> out(B * M * NH * HD, 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hh = 0; hh < NH; ++hh)
        for (int64_t i = 0; i < M; ++i) {
          std::vector<double> l(M);
          double mx = -1e300, z = 0;
          for (int64_t j = 0; j < M; ++j) {
            double s = 0;
            for (int64_t d = 0; d < HD; ++d) s += at(b, i, 0, hh, d) * at(b, j, 1, hh, d);
            for (size_t p = 0; p < t->indexes.size(); ++p) {
              const std::vector<double> I = t->indexes[p].idx.to_vector(), TK = t->table_k[p].to_vector(),
                                        TQ = t->table_q[p].to_vector();
              const int64_t T = t->indexes[p].T, bij = (int64_t)I[i * M + j], bji = (int64_t)I[j * M + i];
              for (int64_t d = 0; d < HD; ++d)  // tables (NH, HD, T): per head here (shared_head false)
                s += at(b, i, 0, hh, d) * TK[(hh * HD + d) * T + bij] + at(b, j, 1, hh, d) * TQ[(hh * HD + d) * T + bji];
            }
            l[j] = s * scale;
            mx = std::max(mx, l[j]);
          }
          for (auto& e : l) z += (e = std::exp(e - mx));
          for (int64_t j = 0; j < M; ++j)
            for (int64_t d = 0; d < HD; ++d) {
              double val = at(b, j, 2, hh, d);
              for (size_t p = 0; p < t->indexes.size(); ++p) {
                const int64_t T = t->indexes[p].T, bij = (int64_t)t->indexes[p].idx.to_vector()[i * M + j];
                val += t->table_v[p].to_vector()[(hh * T + bij) * HD + d];
              }
              out[((b * M + i) * NH + hh) * HD + d] += l[j] / z * val;
            }
        }
    Tensor ref = linear(from_vector(out, {B, M, NH * HD}), attn.proj->weight, attn.proj->bias);
    check_close(attn(x).to_vector(), ref.to_vector(), 1e-5, 1e-4, "irpe contextual attention");
  }
  // bias mode on q or v is refused at config time
  CHECK_THROWS_WITH_AS(Config::parse("model:\n  type: vit\n  rel_pos: irpe\n  irpe_on: qk\n", "r.yaml"),
                       doctest::Contains("needs model.irpe_mode: contextual"), pw::Error);
}

TEST_CASE("static encodings run fused with a bias (NH,N,N) or (1,N,N); class token rows are 0 or iRPE's bucket") {
  for (const std::string kind : {"swin", "alibi", "irpe"}) {
    CAPTURE(kind);
    RelPosOptions o = rel(kind);
    o.irpe_shared_head = true;
    std::shared_ptr<AttentionTerm> t = make_rel_pos(o, 3, 3, 4, 8, 1);
    for (const Param& p : t->parameters()) init_uniform(const_cast<Tensor&>(p.tensor), -1, 1);
    Tensor b = t->static_bias();
    REQUIRE(b.defined());
    CHECK(b.shape() == Shape{kind == "irpe" ? 1 : 4, 10, 10});
    std::vector<double> v = b.to_vector();
    if (kind == "irpe") {  // one learned scalar for every class-token pair
      for (int64_t j = 0; j < 10; ++j) {
        CHECK(v[j] == v[0]);
        CHECK(v[j * 10] == v[0]);
      }
    } else {
      for (int64_t j = 0; j < 10; ++j) {
        CHECK(v[j] == 0);
        CHECK(v[j * 10] == 0);
      }
    }
  }
}

TEST_CASE("model.rel_pos keys: defaults, choices and the rope2d head-size check") {
  Config c = Config::parse("model:\n  type: vit\n  rel_pos: irpe\n", "r.yaml");
  CHECK(c.get_string("model.rel_pos") == "irpe");
  CHECK(c.get_string("model.irpe_method") == "product");
  CHECK(c.get_float("model.irpe_ratio") == 1.9);
  CHECK(c.get_int("model.rel_pos_clip") == 16);
  CHECK(c.get_float("model.rope_base") == 100);
  CHECK(Config::parse("model:\n  type: simple_vit\n", "s.yaml").get_string("model.rel_pos") == "none");
  CHECK_THROWS_WITH_AS(Config::parse("model:\n  type: simple_vit\n  dim_head: 6\n  rel_pos: rope2d\n", "r.yaml"),
                       doctest::Contains("rope2d needs a model.dim_head divisible by 4"), pw::Error);
}

TEST_CASE("every encoding trains: 30 AdamW steps on a tiny ViT and SimpleViT lower the loss") {
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"none", ""},          {"swin", ""},        {"alibi", ""},           {"rope2d", ""},
      {"shaw", ""},          {"irpe", "product"}, {"irpe", "euclidean"},   {"irpe", "quantized"},
      {"irpe", "cross"},     {"xl", ""},          {"huang", ""},           {"irpe_ctx", "product"},
      {"irpe_ctx", "cross"}, {"sasa", ""}};
  for (const bool vit : {true, false})
    for (auto [kind, method] : kinds) {
      CAPTURE(vit);
      const std::string kind_ = kind, method_ = method;  // clang < 16 can't capture bindings
      CAPTURE(kind_);
      CAPTURE(method_);
      VitOptions o = vit ? VitOptions::vit() : VitOptions::simple_vit();
      o.image_size = 8;
      o.patch_size = 2;
      o.channels = 1;
      o.num_classes = 4;
      o.dim = 16;
      o.depth = 2;
      o.heads = 2;
      o.dim_head = 8;
      o.mlp_dim = 32;
      o.rel_pos = rel(kind, method.empty() ? "product" : method);
      o.rel_pos.irpe_shared_head = true;
      if (kind_ == "sasa") {
        o.attention = "sasa";
        o.rel_pos.sasa_kernel = 3;
      }
      manual_seed(7);
      VisionTransformer m(o);
      Tensor x = normal({8, 1, 8, 8}, 0, 1), y = from_vector({0, 1, 2, 3, 0, 1, 2, 3}, {8}, DType::I64);
      AdamW opt(m.parameters(), 0.9, 0.999, 1e-8, 0.0);
      double first = 0, last = 0;
      for (int step = 0; step < 30; ++step) {
        for (Param p : m.parameters()) p.tensor.zero_grad();
        Tensor loss = cross_entropy(m(x), y);
        if (step == 0) first = loss.item();
        last = loss.item();
        loss.backward();
        opt.step(3e-3);
      }
      CHECK(last < 0.7 * first);
      // the encoding's own parameters learn too
      for (const Param& p : m.parameters())
        if (p.name.find(".term.") != std::string::npos) {
          CAPTURE(p.name);
          CHECK(p.tensor.grad().defined());
        }
    }
}

TEST_CASE("resolution extrapolation: a model built at 28 loads and runs at 32 and 36; same-size resizing is the identity") {
  // same size: bicubic and bilinear (align_corners=False) sample the grid points themselves
  for (const std::string mode : {"bicubic", "bilinear"}) {
    CAPTURE(mode);
    Tensor pe = normal({1, 1 + 7 * 7, 12}, 0, 1);
    check_close(resize_pos_embed(pe, 1, 7, 7, 7, 7, mode).to_vector(), pe.to_vector(), 1e-6, 1e-6, "pos_embed");
    Tensor tb = normal({13 * 13, 3}, 0, 1);
    check_close(resize_rel_table(tb, 7, 7, 7, 7, mode).to_vector(), tb.to_vector(), 1e-6, 1e-6, "swin table");
    // a constant table stays constant at another size; the class token row is kept
    Tensor c = resize_pos_embed(concat({narrow(pe, 1, 0, 1), full({1, 49, 12}, 0.25)}, 1), 1, 7, 7, 9, 9, mode);
    CHECK(c.shape() == Shape{1, 82, 12});
    std::vector<double> v = c.to_vector();
    for (int64_t d = 0; d < 12; ++d) CHECK(v[d] == pe.to_vector()[d]);
    for (size_t e = 12; e < v.size(); ++e) CHECK(v[e] == doctest::Approx(0.25).epsilon(1e-6));
  }
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"learned", "none"}, {"sincos2d", "none"}, {"sinusoidal", "none"}, {"none", "swin"},  {"none", "irpe"},
      {"none", "alibi"},   {"none", "rope2d"},   {"none", "shaw"},       {"none", "xl"},    {"none", "huang"},
      {"none", "sasa"}};
  for (const bool vit : {true, false})
    for (auto [pe, kind] : kinds) {
      const std::string pe_ = pe, kind_ = kind;
      CAPTURE(vit);
      CAPTURE(pe_);
      CAPTURE(kind_);
      auto opts = [&](int64_t size) {
        VitOptions o = vit ? VitOptions::vit() : VitOptions::simple_vit();
        o.image_size = size;
        o.patch_size = 4;
        o.channels = 1;
        o.num_classes = 3;
        o.dim = 16;
        o.depth = 1;
        o.heads = 2;
        o.dim_head = 8;
        o.mlp_dim = 16;
        o.pos_embed = pe_;
        o.rel_pos = rel(kind_);
        if (kind_ == "sasa") o.attention = "sasa";
        return o;
      };
      manual_seed(3);
      VisionTransformer m28(opts(28));
      std::map<std::string, Tensor> sd;
      for (auto& [n, t] : m28.state_dict()) sd[n] = t;
      for (int64_t size : {32, 36}) {
        CAPTURE(size);
        VisionTransformer m(opts(size));
        std::vector<std::string> resized;
        std::map<std::string, Tensor> fitted = fit_state_dict_to_resolution(m, sd, "bicubic", &resized);
        m.load_state_dict(fitted);
        if (pe_ == "learned" || kind_ == "swin") CHECK(resized.size() == 1u);
        else CHECK(resized.empty());
        m.eval();
        Tensor y = m(normal({2, 1, size, size}, 0, 1));
        CHECK(y.shape() == Shape{2, 3});
        for (double e : y.to_vector()) CHECK(std::isfinite(e));
      }
      // at the same size nothing is resized and the weights load unchanged
      VisionTransformer same(opts(28));
      std::vector<std::string> resized;
      same.load_state_dict(fit_state_dict_to_resolution(same, sd, "bicubic", &resized));
      CHECK(resized.empty());
      Tensor x = normal({2, 1, 28, 28}, 0, 1);
      m28.eval();
      same.eval();
      CHECK(same(x).to_vector() == m28(x).to_vector());
    }
}

TEST_CASE("key padding: padded keys get no attention and the valid tokens' outputs equal the unpadded sequence's") {
  // 1D sequences (a 1 x N grid, as Conformer uses them), every relative encoding that runs on one
  const int64_t N = 6, L = 4, D = 16, NH = 2, HD = 8;
  for (const std::string kind : {"none", "alibi", "rope2d", "shaw", "huang", "xl", "irpe", "irpe_ctx", "swin"}) {
    CAPTURE(kind);
    RelPosOptions o = rel(kind);
    auto make = [&](int64_t n) {
      auto a = std::make_shared<Attention>(D, NH, HD, true);
      a->set_term(std::make_shared<KeyPaddingTerm>(make_rel_pos(o, 1, n, NH, HD, 0)));
      return a;
    };
    manual_seed(11);
    auto full_attn = make(N);
    for (const Param& p : full_attn->term->parameters()) init_uniform(const_cast<Tensor&>(p.tensor), -1, 1);
    auto padded = std::dynamic_pointer_cast<KeyPaddingTerm>(full_attn->term);
    REQUIRE(padded);
    padded->set_lengths(from_vector({(double)L, (double)N}, {2}, DType::I64), N, Device::CPU);
    Tensor x = normal({2, N, D}, 0, 1);
    std::vector<double> y = (*full_attn)(x).to_vector();
    // the same sequence with other values in its padding: the valid outputs do not move
    Tensor x2 = concat({narrow(x, 1, 0, L), normal({2, N - L, D}, 0, 1)}, 1);
    x2 = concat({narrow(x2, 0, 0, 1), narrow(x, 0, 1, 1)}, 0);
    std::vector<double> y2 = (*full_attn)(x2).to_vector();
    for (int64_t e = 0; e < L * D; ++e) CHECK(y2[e] == doctest::Approx(y[e]).epsilon(1e-6));
    // against the unpadded sequence of length L with the same weights (Swin's table depends
    // on the grid: skip it there; its index tables are checked above)
    if (kind != "swin") {
      auto short_attn = make(L);
      std::map<std::string, Tensor> sd;
      for (auto& [n, t] : full_attn->state_dict()) sd[n] = t;
      short_attn->load_state_dict(sd);
      std::vector<double> ys = (*short_attn)(narrow(narrow(x, 0, 0, 1), 1, 0, L)).to_vector();
      check_close(std::vector<double>(y.begin(), y.begin() + L * D), ys, 1e-5, 1e-5, "valid outputs");
      if (kind == "xl") {  // XL takes any length: the term built for N on the L tokens
        padded->set_lengths(Tensor(), N, Device::CPU);
        std::vector<double> yl = (*full_attn)(narrow(narrow(x, 0, 0, 1), 1, 0, L)).to_vector();
        check_close(yl, ys, 1e-5, 1e-5, "xl built for N, run on L tokens");
        padded->set_lengths(from_vector({(double)L, (double)N}, {2}, DType::I64), N, Device::CPU);
      }
    }
    // the full-length sample is the unmasked attention
    padded->set_lengths(Tensor(), N, Device::CPU);
    std::vector<double> yu = (*full_attn)(x).to_vector();
    check_close(std::vector<double>(y.begin() + N * D, y.end()), std::vector<double>(yu.begin() + N * D, yu.end()),
                1e-5, 1e-5, "unmasked sample");
  }
}

TEST_CASE("SASA: the window's logits are the factorised embeddings, and a token outside the window has no effect") {
  const int64_t h = 5, w = 5, N = h * w, NH = 2, HD = 8, D = 16, K = 3;
  for (const int64_t skip : {0, 1}) {
    CAPTURE(skip);
    const int64_t M = N + skip;
    auto t = std::make_shared<SasaTerm>(h, w, HD, K, skip);
    init_uniform(t->row, -1, 1);
    init_uniform(t->col, -1, 1);
    Tensor q = normal({1, NH, M, HD}, 0, 1), k = normal({1, NH, M, HD}, 0, 1);
    std::vector<double> got = t->logits_term(q, k).to_vector(), Q = q.to_vector(), R = t->row.to_vector(),
                        C = t->col.to_vector();
    const double scale = 1 / std::sqrt((double)HD);
    for (int64_t hh = 0; hh < NH; ++hh)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < M; ++j) {
          double want = 0;
          if (i >= skip && j >= skip) {
            const int64_t pi = i - skip, pj = j - skip, dr = pj / w - pi / w, dc = pj % w - pi % w;
            if (std::abs(dr) > K / 2 || std::abs(dc) > K / 2) {
              want = -1e9;
            } else {
              for (int64_t d = 0; d < HD / 2; ++d)
                want += Q[(hh * M + i) * HD + d] * R[(dr + K / 2) * (HD / 2) + d] +
                        Q[(hh * M + i) * HD + HD / 2 + d] * C[(dc + K / 2) * (HD / 2) + d];
              want *= scale;
            }
          }
          const double g = got[(hh * M + i) * M + j];
          if (std::abs(g - want) > 1e-5 * (1 + std::abs(want))) FAIL_CHECK("(", i, ",", j, "): ", g, " vs ", want);
        }
    // property: the output of patch (2,2) does not move when a patch outside its 3x3 window changes,
    // and does when one inside it changes
    Attention attn(D, NH, HD, true);
    attn.set_term(t);
    Tensor x = normal({1, M, D}, 0, 1);
    const int64_t centre = skip + 2 * w + 2, outside = skip + 0 * w + 4, inside = skip + 1 * w + 3;
    auto out_at = [&](const Tensor& xx, int64_t n) {
      std::vector<double> y = attn(xx).to_vector();
      return std::vector<double>(y.begin() + n * D, y.begin() + (n + 1) * D);
    };
    auto perturb = [&](int64_t n) {
      std::vector<double> v = x.to_vector();
      for (int64_t d = 0; d < D; ++d) v[n * D + d] += 3.0;
      return from_vector(v, {1, M, D});
    };
    const std::vector<double> base = out_at(x, centre), far = out_at(perturb(outside), centre),
                              near = out_at(perturb(inside), centre);
    for (int64_t d = 0; d < D; ++d) CHECK(far[d] == doctest::Approx(base[d]).epsilon(1e-6));
    double moved = 0;
    for (int64_t d = 0; d < D; ++d) moved = std::max(moved, std::abs(near[d] - base[d]));
    CHECK(moved > 1e-3);
  }
  CHECK_THROWS_WITH_AS(Config::parse("model:\n  type: vit\n  attention: sasa\n  rel_pos: xl\n", "r.yaml"),
                       doctest::Contains("sasa brings its own relative embeddings"), pw::Error);
  CHECK_THROWS_WITH_AS(Config::parse("model:\n  type: vit\n  attention: sasa\n  sasa_kernel: 4\n", "r.yaml"),
                       doctest::Contains("odd model.sasa_kernel"), pw::Error);
}

TEST_CASE("SASA: the fused local_attention_rel equals the masked O(N^2) composition (float64, forward and gradients)") {
  struct Case { int64_t h, w, K, skip; };
  // non-square grids; K 5 and 7 exceed the 3-row grid (every window clipped)
  for (const Case c : {Case{3, 5, 3, 0}, Case{3, 5, 3, 1}, Case{3, 5, 5, 0}, Case{3, 5, 5, 1}, Case{5, 3, 7, 2}}) {
    CAPTURE(c.h);
    CAPTURE(c.w);
    CAPTURE(c.K);
    CAPTURE(c.skip);
    const int64_t B = 2, NH = 3, HD = 6, M = c.skip + c.h * c.w;
    SasaTerm t(c.h, c.w, HD, c.K, c.skip);
    auto leaf = [](Shape s) { return normal(s, 0, 1, DType::F64).requires_grad_(); };
    Tensor q = leaf({B, NH, M, HD}), k = leaf({B, NH, M, HD}), v = leaf({B, NH, M, HD});
    Tensor row = leaf({c.K, HD / 2}), col = leaf({c.K, HD / 2});
    Tensor dy = normal({B, NH, M, HD}, 0, 1, DType::F64);
    std::vector<Tensor> leaves = {q, k, v, row, col};
    auto run = [&](bool fused) {
      for (Tensor& l : leaves) l.zero_grad();
      Tensor y = fused ? local_attention_rel(q, k, v, row, col, c.h, c.w, c.K, c.skip)
                       : t.masked_attention(q, k, v, row, col);
      y.backward(dy);
      std::vector<std::vector<double>> out = {y.to_vector()};
      for (Tensor& l : leaves) out.push_back(l.grad().to_vector());
      return out;
    };
    const auto got = run(true), ref = run(false);
    const char* what[] = {"y", "dq", "dk", "dv", "drow", "dcol"};
    for (size_t n = 0; n < got.size(); ++n) check_close(got[n], ref[n], 1e-12, 1e-12, what[n]);
  }
}

TEST_CASE("local_attention_rel: bad shapes are errors that name the op, the shapes and the fix") {
  Tensor q = normal({1, 2, 16, 6}, 0, 1), rc = normal({3, 3}, 0, 1);
  CHECK_THROWS_WITH_AS(local_attention_rel(q, q, q, rc, rc, 3, 5, 4, 1),
                       doctest::Contains("the window K must be odd"), pw::Error);
  CHECK_THROWS_WITH_AS(local_attention_rel(q, q, q, rc, rc, 3, 4, 3, 1),
                       doctest::Contains("has M = 16 tokens but skip + H*W = 1 + 3*4 = 13"), pw::Error);
  Tensor q5 = normal({1, 2, 16, 5}, 0, 1), rc2 = normal({3, 2}, 0, 1);
  CHECK_THROWS_WITH_AS(local_attention_rel(q5, q5, q5, rc2, rc2, 3, 5, 3, 1),
                       doctest::Contains("the head dim must be even"), pw::Error);
  CHECK_THROWS_WITH_AS(local_attention_rel(q, q, q, normal({5, 3}, 0, 1), normal({5, 3}, 0, 1), 3, 5, 3, 1),
                       doctest::Contains("row and col must be (K, HD/2) = (3,3)"), pw::Error);
  CHECK_THROWS_WITH_AS(local_attention_rel(q, normal({1, 2, 15, 6}, 0, 1), q, rc, rc, 3, 5, 3, 1),
                       doctest::Contains("q, k and v must have one shape"), pw::Error);
}

// The calls of op `name` (forward and backward) that the profile has seen.
static int64_t op_calls(OpProfile& prof, const std::string& name) {
  prof.flush();
  int64_t n = 0;
  for (auto& [op, t] : prof.ops)
    if (name == op) n += t.forward_calls + t.backward_calls;
  return n;
}

TEST_CASE("SASA: Attention runs the fused op by default, the masked composition with attention dropout; same outputs") {
  const int64_t h = 4, w = 5, NH = 2, HD = 8, D = 16;
  for (const int64_t skip : {0, 1}) {
    CAPTURE(skip);
    const int64_t M = skip + h * w;
    auto t = std::make_shared<SasaTerm>(h, w, HD, 3, skip);
    init_uniform(t->row, -1, 1);
    init_uniform(t->col, -1, 1);
    Attention attn(D, NH, HD, true);
    attn.set_term(t);
    Tensor x = normal({2, M, D}, 0, 1).requires_grad_();
    Tensor dy = normal({2, M, D}, 0, 1);
    auto run = [&](bool masked) {
      t->masked = masked;
      x.zero_grad();
      for (Param p : attn.parameters()) p.tensor.zero_grad();
      OpProfile prof;  // which ops ran
      Tensor y = attn(x);
      y.backward(dy);
      std::vector<std::vector<double>> out = {y.to_vector(), x.grad().to_vector(), t->row.grad().to_vector(),
                                              t->col.grad().to_vector()};
      return std::make_pair(out, op_calls(prof, "local_attention_rel") == 2);
    };
    const auto [fused, ran_local] = run(false);
    const auto [masked, ran_local_masked] = run(true);
    CHECK(ran_local);
    CHECK(!ran_local_masked);
    const char* what[] = {"y", "dx", "drow", "dcol"};
    for (size_t n = 0; n < fused.size(); ++n) check_close(fused[n], masked[n], 1e-5, 1e-4, what[n]);
    // attention dropout in training: the masked composition (attend() is not asked)
    t->masked = false;
    Attention drop(D, NH, HD, true, /*attn_dropout=*/0.1);
    auto t2 = std::make_shared<SasaTerm>(h, w, HD, 3, skip);
    drop.set_term(t2);
    {
      OpProfile prof;
      drop(x);
      CHECK(op_calls(prof, "local_attention_rel") == 0);
    }
    drop.eval();
    {
      OpProfile prof;
      drop(x);
      CHECK(op_calls(prof, "local_attention_rel") == 1);
    }
  }
}

TEST_CASE("SASA checkpoints: a model's state holds each block's term.row and term.col only; they load across the forms") {
  VitOptions o = VitOptions::vit();
  o.image_size = 8;
  o.patch_size = 2;
  o.channels = 1;
  o.num_classes = 3;
  o.dim = 16;
  o.depth = 2;
  o.heads = 2;
  o.dim_head = 8;
  o.mlp_dim = 16;
  o.pos_embed = "none";
  o.attention = "sasa";
  o.rel_pos.sasa_kernel = 3;
  manual_seed(5);
  VisionTransformer a(o);
  std::vector<std::string> terms;
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : a.state_dict()) {
    sd[n] = t;
    if (n.find(".term.") != std::string::npos) terms.push_back(n);
  }
  // what SasaTerm saved before the fused op (its index and mask were constants, never state)
  CHECK(terms == std::vector<std::string>{"blocks.0.attn.term.row", "blocks.0.attn.term.col",
                                          "blocks.1.attn.term.row", "blocks.1.attn.term.col"});
  manual_seed(6);
  VisionTransformer b(o);
  b.load_state_dict(sd);  // strict
  a.eval();
  b.eval();
  Tensor x = normal({2, 1, 8, 8}, 0, 1);
  const std::vector<double> ya = a(x).to_vector();
  CHECK(b(x).to_vector() == ya);
  for (auto& blk : b.blocks) std::dynamic_pointer_cast<SasaTerm>(blk->attn->term)->masked = true;
  check_close(b(x).to_vector(), ya, 1e-5, 1e-5, "masked form of the loaded model");
}
