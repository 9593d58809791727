// The Conformer (nn/conformer.h): one block against torchaudio's ConformerLayer with the
// same weights (tests/fixtures/conformer_block.safetensors, scripts/reference/conformer.py),
// the causal depthwise conv never reading the future, padding that changes nothing, the
// model training on synthetic features (classify and CTC), and the CTC decoding and WER.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "io/safetensors.h"
#include "kernels/ops.h"
#include "nn/conformer.h"
#include "tests/gradcheck.h"
#include "trainers/config.h"
#include "trainers/optim.h"
#include "trainers/trainer.h"

using namespace pw;
using pw::test::check_close;

namespace {

std::map<std::string, Tensor> with_prefix(const SafetensorsFile& f, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : f.tensors)
    if (n.rfind(prefix + ".", 0) == 0) out[n.substr(prefix.size() + 1)] = t;
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

// A tiny speech Conformer built through the registry, as `patchwork train` builds it.
std::shared_ptr<Module> tiny_conformer(const std::string& extra, int64_t max_frames = 48) {
  std::string yaml = "model:\n  type: conformer\n  image_size: 16\n  channels: 1\n  num_classes: 4\n  dim: 16\n"
                     "  depth: 2\n  heads: 2\n  ff_mult: 2\n  conv_kernel: 5\n  dropout: 0\n  max_frames: " +
                     std::to_string(max_frames) + "\n" + extra + "data:\n  dataset: fashion_mnist\n";
  return build_model(Config::parse(yaml, "tiny_conformer.yaml"));
}

}  // namespace

TEST_CASE("a Conformer block matches torchaudio's ConformerLayer with the same weights") {
  SafetensorsFile f = load_safetensors(std::string(PW_SOURCE_DIR) + "/tests/fixtures/conformer_block.safetensors");
  ConformerOptions o;
  o.dim = 16;
  o.heads = 2;
  o.ff_mult = 2;
  o.conv_kernel = 5;
  o.dropout = 0;
  o.rel_pos.kind = "none";  // torchaudio's layer has absolute positions only (none inside)
  ConformerBlock block(o, nullptr);
  std::map<std::string, Tensor> w = with_prefix(f, "param");
  REQUIRE(w.size() == block.parameters().size());
  for (auto& [n, t] : with_prefix(f, "buffer")) w[n] = t;
  block.load_state_dict(w);

  block.train();  // BatchNorm on batch statistics, as the reference
  Tensor x = f.get("input").detach();
  x.requires_grad_(true);
  Tensor y = block(x);
  check_close(y.to_vector(), f.get("output").to_vector(), 1e-4, 1e-4, "train-mode output");
  sum(y * f.get("upstream")).backward();
  check_close(x.grad().to_vector(), f.get("grad_input").to_vector(), 1e-4, 1e-3, "input gradient");
  std::map<std::string, Tensor> grads = with_prefix(f, "grad");
  for (const Param& p : block.parameters()) {
    CAPTURE(p.name);
    REQUIRE(grads.count(p.name));
    check_close(p.tensor.grad().to_vector(), grads.at(p.name).to_vector(), 1e-4, 1e-3, "grad " + p.name);
  }
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : block.state_dict()) sd[n] = t;
  for (auto& [n, t] : with_prefix(f, "buffer_after"))
    check_close(sd.at(n).to_vector(), t.to_vector(), 1e-5, 1e-4, "running statistic " + n);

  block.eval();
  NoGrad ng;
  check_close(block(f.get("input")).to_vector(), f.get("eval_output").to_vector(), 1e-4, 1e-4, "eval-mode output");
}

TEST_CASE("the causal depthwise conv never reads a later frame; the 'same' one does") {
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    ConformerConv conv(8, 5, causal, "batch", 0.0);
    conv.eval();
    NoGrad ng;
    Tensor x = normal({2, 12, 8}, 0, 1);
    Tensor y = conv(x);
    const int64_t t0 = 7;
    std::vector<double> v = x.to_vector(), noise = normal({2, 8}, 0, 1).to_vector();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t d = 0; d < 8; ++d) v[(b * 12 + t0) * 8 + d] += noise[b * 8 + d];  // perturb frame t0
    Tensor y2 = conv(from_vector(v, {2, 12, 8}));
    const double before = max_abs_diff(narrow(y, 1, 0, t0), narrow(y2, 1, 0, t0));
    const double at = max_abs_diff(narrow(y, 1, t0, 12 - t0), narrow(y2, 1, t0, 12 - t0));
    CHECK(at > 1e-6);  // the perturbed frame itself changes (small: Linear init std .02)
    if (causal) CHECK(before == 0.0);
    else CHECK(before > 1e-6);  // 'same' padding reads two frames ahead
  }
}

TEST_CASE("padded frames get no attention and change no other frame, no pooled output and no loss") {
  for (std::string rel : {"shaw", "none", "alibi"}) {
    for (std::string head : {"classify", "ctc"}) {
      CAPTURE(rel);
      CAPTURE(head);
      auto m = tiny_conformer("  rel_pos: " + rel + "\n  head: " + head + "\n  conv_norm: layer\n");
      m->train();  // dropout 0 and LayerNorm in the conv module: train mode is deterministic and per-frame
      const int64_t T = 40, Tlong = 46;
      Tensor a = normal({1, 1, 16, T}, 0, 1);
      // a alone, unpadded; then a padded with random garbage in a batch with a longer sample
      Tensor lens1 = from_indices({T}, {1});
      Tensor out1 = (*m)(a, lens1);
      Tensor other = normal({1, 1, 16, Tlong}, 0, 1), garbage = normal({1, 1, 16, Tlong - T}, 0, 5);
      Tensor a_padded = concat({a, garbage}, 3);
      Tensor batch = concat({a_padded, other}, 0);
      Tensor lens2 = from_indices({T, Tlong}, {2});
      Tensor out2 = (*m)(batch, lens2);
      if (head == "classify") {
        CHECK(max_abs_diff(out1, narrow(out2, 0, 0, 1)) < 1e-5);
      } else {
        const int64_t Ta = conformer_subsampled(T);
        CHECK(m->output_lengths(lens2).to_vector() == std::vector<double>{(double)Ta, (double)conformer_subsampled(Tlong)});
        CHECK(max_abs_diff(narrow(out1, 1, 0, Ta), narrow(narrow(out2, 0, 0, 1), 1, 0, Ta)) < 1e-5);
        // and the CTC loss of sample a is the same padded or not
        Tensor tg = from_indices({1, 2, 3}, {1, 3}), tl = from_indices({3}, {1});
        Tensor l1 = ctc_loss(out1, tg, m->output_lengths(lens1), tl);
        Tensor l2 = ctc_loss(narrow(out2, 0, 0, 1), tg, from_indices({Ta}, {1}), tl);
        CHECK(std::fabs(l1.to_vector()[0] - l2.to_vector()[0]) < 1e-4);
      }
      // garbage of another draw in the padding: the same output again (exactly)
      Tensor batch3 = concat({concat({a, normal({1, 1, 16, Tlong - T}, 0, 5)}, 3), other}, 0);
      Tensor out3 = (*m)(batch3, lens2);
      if (head == "classify") {
        CHECK(max_abs_diff(out2, out3) == 0.0);
      } else {
        const int64_t Ta = conformer_subsampled(T);
        CHECK(max_abs_diff(narrow(narrow(out2, 0, 0, 1), 1, 0, Ta), narrow(narrow(out3, 0, 0, 1), 1, 0, Ta)) == 0.0);
        CHECK(max_abs_diff(narrow(out2, 0, 1, 1), narrow(out3, 0, 1, 1)) == 0.0);
      }
    }
  }
}

TEST_CASE("an input longer than model.max_frames is refused, naming the key") {
  auto m = tiny_conformer("");
  CHECK_THROWS_WITH_AS((*m)(normal({1, 1, 16, 60}, 0, 1)), doctest::Contains("model.max_frames"), Error);
}

TEST_CASE("a tiny Conformer learns synthetic keywords (the loss falls)") {
  manual_seed(5);
  auto m = tiny_conformer("");
  m->train();
  AdamW opt(m->parameters(), 0.9, 0.999, 1e-8, 0.0);
  // class c: mel bins 4c..4c+3 raised over noise, in a random span of a variable-length clip
  auto batch = [](uint64_t seed, Tensor& x, Tensor& lens, Tensor& labels) {
    Generator g(seed);
    const int64_t B = 8, T = 40;
    std::vector<double> v = normal({B, 1, 16, T}, 0, 1, DType::F64, &g).to_vector();
    std::vector<int64_t> l(B), y(B);
    for (int64_t b = 0; b < B; ++b) {
      y[b] = (int64_t)(b % 4);
      l[b] = 24 + (b * 5) % 17;
      for (int64_t f = 4 * y[b]; f < 4 * y[b] + 4; ++f)
        for (int64_t t = 0; t < l[b]; ++t) v[(b * 16 + f) * T + t] += 2.0;
      for (int64_t f = 0; f < 16; ++f)
        for (int64_t t = l[b]; t < T; ++t) v[(b * 16 + f) * T + t] = 0.0;
    }
    x = from_vector(v, {B, 1, 16, T});
    lens = from_indices(l, {B});
    labels = from_indices(y, {B});
  };
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    Tensor x, lens, labels;
    batch(100 + step, x, lens, labels);
    opt.zero_grad();
    Tensor loss = cross_entropy((*m)(x, lens), labels);
    loss.backward();
    opt.step(2e-3);
    const double v = loss.to_vector()[0];
    if (step < 3) first += v / 3;
    if (step >= 27) last += v / 3;
  }
  MESSAGE("keyword loss: first 3 steps " << first << ", last 3 " << last);
  CHECK(last < 0.5 * first);
}

TEST_CASE("a tiny CTC Conformer learns synthetic label sequences (the loss falls)") {
  manual_seed(6);
  auto m = tiny_conformer("  head: ctc\n", 64);
  m->train();
  AdamW opt(m->parameters(), 0.9, 0.999, 1e-8, 0.0);
  // label k in 1..3 is 12 frames of mel bins 4k..4k+3 raised; 2 to 4 labels per utterance
  auto batch = [](uint64_t seed, Tensor& x, Tensor& lens, Tensor& tg, Tensor& tl) {
    Generator g(seed);
    std::mt19937_64 rng(seed);
    const int64_t B = 6, T = 64, S = 4;
    std::vector<double> v = normal({B, 1, 16, T}, 0, 0.5, DType::F64, &g).to_vector();
    std::vector<int64_t> l(B), t(B * S, 0), n(B);
    for (int64_t b = 0; b < B; ++b) {
      n[b] = 2 + (int64_t)(rng() % 3);
      l[b] = 12 * n[b] + 4;
      for (int64_t s = 0; s < n[b]; ++s) {
        const int64_t k = 1 + (int64_t)(rng() % 3);
        t[b * S + s] = k;
        for (int64_t f = 4 * k; f < 4 * k + 4; ++f)
          for (int64_t u = 2 + 12 * s; u < 12 + 12 * s; ++u) v[(b * 16 + f) * T + u] += 2.5;
      }
      for (int64_t f = 0; f < 16; ++f)
        for (int64_t u = l[b]; u < T; ++u) v[(b * 16 + f) * T + u] = 0.0;
    }
    x = from_vector(v, {B, 1, 16, T});
    lens = from_indices(l, {B});
    tg = from_indices(t, {B, S});
    tl = from_indices(n, {B});
  };
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    Tensor x, lens, tg, tl;
    batch(200 + step, x, lens, tg, tl);
    opt.zero_grad();
    Tensor lp = (*m)(x, lens);
    Tensor loss = mean(ctc_loss(lp, tg, m->output_lengths(lens), tl, 0, true) / tl.to(DType::F32));
    loss.backward();
    opt.step(3e-3);
    const double v = loss.to_vector()[0];
    if (step < 3) first += v / 3;
    if (step >= 37) last += v / 3;
  }
  MESSAGE("CTC loss per target token: first 3 steps " << first << ", last 3 " << last);
  CHECK(last < 0.5 * first);
}

TEST_CASE("greedy CTC decoding collapses repeats and drops blanks; WER counts word edits") {
  // frames' argmax: 1 1 0 1 2 2 0 0 3 | padding 3 3 -> [1, 1, 2, 3]
  const std::vector<int64_t> path = {1, 1, 0, 1, 2, 2, 0, 0, 3, 3, 3};
  std::vector<double> lp(path.size() * 4, -5.0);
  for (size_t t = 0; t < path.size(); ++t) lp[t * 4 + path[t]] = -0.1;
  auto d = ctc_greedy_decode(from_vector(lp, {1, (int64_t)path.size(), 4}), from_indices({9}, {1}));
  REQUIRE(d.size() == 1);
  CHECK(d[0] == std::vector<int64_t>{1, 1, 2, 3});
  CHECK(ctc_greedy_decode(from_vector(lp, {1, (int64_t)path.size(), 4}), Tensor())[0] ==
        std::vector<int64_t>{1, 1, 2, 3});
  CHECK(edit_distance({1, 2, 3}, {1, 2, 3}) == 0);
  CHECK(edit_distance({1, 2, 3}, {1, 3}) == 1);        // a deletion
  CHECK(edit_distance({1, 2, 3}, {1, 4, 2, 3}) == 1);  // an insertion
  CHECK(edit_distance({1, 2, 3}, {3, 2, 1}) == 2);     // two substitutions
  CHECK(edit_distance({}, {5, 5}) == 2);
  CHECK(word_error_rate({{1, 2, 3}, {4, 5}}, {{1, 3}, {4, 5, 6}}) == doctest::Approx(2.0 / 5.0));
}

TEST_CASE("a Conformer over image patches classifies images; lengths are refused") {
  std::string yaml =
      "model:\n  type: conformer\n  frontend: patches\n  image_size: 8\n  patch_size: 2\n  channels: 3\n"
      "  num_classes: 5\n  dim: 16\n  depth: 1\n  heads: 2\n  conv_kernel: 3\n  dropout: 0\n"
      "data:\n  dataset: fashion_mnist\n";
  auto m = build_model(Config::parse(yaml, "patches.yaml"));
  Tensor y = (*m)(normal({2, 3, 8, 8}, 0, 1));
  CHECK(y.shape() == Shape{2, 5});
  CHECK_THROWS_AS((*m)(normal({2, 3, 8, 8}, 0, 1), from_indices({4, 4}, {2})), Error);
}

TEST_CASE("train_step takes CTC for a batch with token targets: mean over samples of loss / target length") {
  Config cfg = Config::parse(
      "model:\n  type: conformer\n  image_size: 16\n  channels: 1\n  num_classes: 4\n  dim: 16\n  depth: 1\n"
      "  heads: 2\n  ff_mult: 2\n  conv_kernel: 5\n  dropout: 0\n  max_frames: 48\n  head: ctc\n  conv_norm: layer\n"
      "data:\n  dataset: fashion_mnist\n",
      "ctc.yaml");
  auto m = build_model(cfg);
  m->train();
  Batch b;
  b.images = normal({2, 1, 16, 40}, 0, 1);
  b.lengths = from_indices({40, 31}, {2});
  b.labels = from_indices({0, 0}, {2});
  b.targets = from_indices({1, 2, 3, 3, 1, 0}, {2, 3});
  b.target_lengths = from_indices({3, 2}, {2});
  double expected;
  {
    NoGrad ng;
    Tensor lp = (*m)(b.images, b.lengths);
    std::vector<double> l = ctc_loss(lp, b.targets, m->output_lengths(b.lengths), b.target_lengths).to_vector();
    expected = (l[0] / 3 + l[1] / 2) / 2;
  }
  AdamW opt(m->parameters(), 0.9, 0.999, 1e-8, 0.0);
  StepOut out = train_step(*m, opt, nullptr, b, TrainSpec::from(cfg), 1e-3);
  CHECK(out.loss.to_vector()[0] == doctest::Approx(expected).epsilon(1e-5));
}

TEST_CASE("an evaluation of token targets reports its word error rate (JSON and text), no per-class table") {
  EvalResult r;  // as evaluate() returns it for CTC batches: num_classes 0
  r.n = 4;
  r.loss = 0.5;
  r.top1 = r.top5 = 0.75;
  r.wer = 0.125;
  CHECK(r.to_json().find("\"wer\": 0.125") != std::string::npos);
  CHECK(r.to_text({}).find("word error rate 12.50%") != std::string::npos);
  EvalResult c;  // classification: no wer field
  CHECK(c.to_json().find("wer") == std::string::npos);
}
