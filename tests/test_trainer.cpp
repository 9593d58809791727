// The product end to end on a tiny synthetic MNIST-format data set: training
// learns, resume is bit-exact, bad configs and checkpoints are refused clearly,
// evaluation counts right.
#include <doctest/doctest.h>

#include <cmath>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "kernels/ops.h"
#include "runtime/cuda/runtime.h"
#include "trainers/checkpoint.h"
#include "trainers/cli.h"
#include "trainers/config.h"
#include "io/safetensors.h"
#include "trainers/trainer.h"

namespace fs = std::filesystem;
using namespace pw;

namespace {

void put_be32(std::ofstream& f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
  f.write((const char*)b, 4);
}

// Writes {train,t10k}-{images-idx3,labels-idx1}-ubyte: class k is a stripe
// pattern over the whole image (k < 5: vertical stripes of period k+2, else
// horizontal of period k-3) plus noise, with a random phase. Every patch shows
// the class, so a tiny model learns it in a few dozen steps; it is a texture,
// not a brightness, because SimpleViT normalises each patch (LayerNorm).
void write_split(const fs::path& dir, const char* prefix, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::ofstream img(dir / (std::string(prefix) + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream lab(dir / (std::string(prefix) + "-labels-idx1-ubyte"), std::ios::binary);
  put_be32(img, 0x803);
  put_be32(img, n);
  put_be32(img, 28);
  put_be32(img, 28);
  put_be32(lab, 0x801);
  put_be32(lab, n);
  for (int i = 0; i < n; ++i) {
    int k = (int)(rng() % 10);
    unsigned char px[28 * 28];
    int period = k < 5 ? k + 2 : k - 3, phase = (int)(rng() % period);
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        int t = ((k < 5 ? x : y) + phase) % period;
        px[y * 28 + x] = (unsigned char)((t < period / 2 ? 200 : 50) + rng() % 40);
      }
    img.write((const char*)px, sizeof px);
    unsigned char l = (unsigned char)k;
    lab.write((const char*)&l, 1);
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("pw_trainer_" + std::to_string(::getpid()) + "_" + std::to_string(rand()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// The synthetic data set, written once per test binary.
const fs::path& data_dir() {
  static TempDir d;
  static bool written = false;
  if (!written) {
    write_split(d.path, "train", 384, 1);
    write_split(d.path, "t10k", 128, 2);
    written = true;
  }
  return d.path;
}

std::string tiny_config(const std::string& extra_train = "") {
  return "model:\n  type: simple_vit\n  image_size: 28\n  patch_size: 7\n  channels: 1\n  num_classes: 10\n"
         "  dim: 32\n  depth: 2\n  heads: 2\n  dim_head: 16\n  mlp_dim: 64\n  drop_path: 0.1\n"
         "data:\n  dataset: mnist\n  root: " +
         data_dir().string() +
         "\n  num_workers: 2\n  crop_padding: 1\n"
         "train:\n  device: cpu\n  epochs: 3\n  batch_size: 32\n  lr: 0.003\n  warmup_epochs: 0.5\n  threads: 2\n"
         "  eval_every: 0\n  checkpoint_every: 0\n" +
         extra_train;
}

TrainOptions quiet(const std::string& out) {
  TrainOptions o;
  o.out_dir = out;
  o.quiet = true;
  return o;
}

}  // namespace

TEST_CASE("a tiny SimpleViT learns the synthetic task") {
  TempDir run;
  Config cfg = Config::parse(tiny_config(), "tiny.yaml");
  TrainResult r = train(cfg, quiet((run.path / "a").string()));
  REQUIRE(r.losses.size() == 36);  // 3 epochs x 384/32 batches
  double first = (r.losses[0] + r.losses[1] + r.losses[2]) / 3;
  double last = (r.losses[33] + r.losses[34] + r.losses[35]) / 3;
  CAPTURE(first);
  CAPTURE(last);
  CHECK(first > 2.0);          // ~ln(10) at the start
  CHECK(last < 0.6 * first);   // well below the start
  CHECK(r.test_top1 > 0.5);    // chance is 0.1
  // The run folder holds the resolved config, metrics and a checkpoint.
  CHECK(fs::exists(run.path / "a" / "config.yaml"));
  CHECK(fs::exists(run.path / "a" / "metrics.jsonl"));
  CHECK(!latest_checkpoint((run.path / "a").string()).empty());
}

TEST_CASE("resume continues bit for bit: 2N steps == N steps + resume + N steps") {
  TempDir run;
  Config cfg = Config::parse(tiny_config("  ema_decay: 0.9\n  clip_grad: 1.0\n"), "tiny.yaml");
  std::string straight = (run.path / "straight").string(), split = (run.path / "split").string();
  TrainResult a = train(cfg, quiet(straight));

  TrainOptions first = quiet(split);
  first.max_steps = 17;  // mid-epoch: epoch 1, batch 5
  TrainResult b1 = train(cfg, first);
  REQUIRE(b1.losses.size() == 17);
  TrainOptions resume;
  resume.resume_dir = split;
  resume.quiet = true;
  TrainResult b2 = train(cfg, resume);

  std::vector<double> joined = b1.losses;
  joined.insert(joined.end(), b2.losses.begin(), b2.losses.end());
  REQUIRE(joined.size() == a.losses.size());
  for (size_t i = 0; i < joined.size(); ++i) {
    CAPTURE(i);
    CHECK(joined[i] == a.losses[i]);  // exact
  }
  LoadedCheckpoint ca = load_checkpoint(straight), cb = load_checkpoint(split);
  REQUIRE(ca.model.size() == cb.model.size());
  for (auto& [name, t] : ca.model) {
    const std::string& tensor = name;  // clang < 16 can't capture bindings
    CAPTURE(tensor);
    const Tensor& u = cb.model.at(name);
    REQUIRE(u.shape() == t.shape());
    CHECK(std::memcmp(t.raw(), u.raw(), t.numel() * dtype_size(t.dtype())) == 0);
  }
  CHECK(a.test_top1 == b2.test_top1);
}

TEST_CASE("resume refuses a config whose model differs, naming what differs") {
  TempDir run;
  std::string dir = (run.path / "r").string();
  TrainOptions o = quiet(dir);
  o.max_steps = 2;
  train(Config::parse(tiny_config(), "tiny.yaml"), o);
  Config other = Config::parse(tiny_config(), "tiny.yaml", {"model.depth=3"});
  TrainOptions r;
  r.resume_dir = dir;
  r.quiet = true;
  CHECK_THROWS_WITH_AS(train(other, r), doctest::Contains("model.depth: 2 in the checkpoint, 3 in the config"),
                       pw::Error);
}

TEST_CASE("a checkpoint written before a key existed still resumes (the key takes its default)") {
  TempDir run;
  std::string dir = (run.path / "r").string();
  TrainOptions o = quiet(dir);
  o.max_steps = 2;
  Config cfg = Config::parse(tiny_config(), "tiny.yaml");
  train(cfg, o);
  // Rewrite the state as an older patchwork would have: its config has no
  // model.shaw_values line, and its hash is that config's hash.
  fs::path state = fs::path(latest_checkpoint(dir)) / "state.safetensors";
  SafetensorsFile s = load_safetensors(state.string());
  std::string yaml = s.metadata["config"], older;
  std::istringstream lines(yaml);
  for (std::string line; std::getline(lines, line);)
    if (line.find("shaw_values:") == std::string::npos) older += line + "\n";
  REQUIRE(older.size() < yaml.size());
  s.metadata["config"] = older;
  s.metadata["config_hash"] = std::to_string(cfg.hash() ^ 1);  // what today's canonical text can't give
  std::vector<std::pair<std::string, Tensor>> ts(s.tensors.begin(), s.tensors.end());
  save_safetensors(state.string(), ts, s.metadata);
  TrainOptions r;
  r.resume_dir = dir;
  r.quiet = true;
  r.max_steps = 3;
  CHECK(train(cfg, r).steps == 3);
  // A real difference is still named.
  Config other = Config::parse(tiny_config(), "tiny.yaml", {"model.depth=3"});
  r.max_steps = 4;
  CHECK_THROWS_WITH_AS(train(other, r), doctest::Contains("model.depth"), pw::Error);
}

TEST_CASE("a new run refuses to overwrite an existing run folder") {
  TempDir run;
  std::string dir = (run.path / "r").string();
  TrainOptions o = quiet(dir);
  o.max_steps = 1;
  Config cfg = Config::parse(tiny_config(), "tiny.yaml");
  train(cfg, o);
  CHECK_THROWS_WITH_AS(train(cfg, o), doctest::Contains("--resume"), pw::Error);
}

TEST_CASE("truncated or corrupted checkpoints are refused with a message naming the file") {
  TempDir run;
  std::string dir = (run.path / "r").string();
  TrainOptions o = quiet(dir);
  o.max_steps = 1;
  train(Config::parse(tiny_config(), "tiny.yaml"), o);
  std::string ck = latest_checkpoint(dir);
  fs::path model = fs::path(ck) / "model.safetensors";
  auto size = fs::file_size(model);
  for (uintmax_t cut : {uintmax_t(3), uintmax_t(20), size / 2, size - 1}) {
    fs::copy_file(model, run.path / "m.safetensors", fs::copy_options::overwrite_existing);
    fs::resize_file(run.path / "m.safetensors", cut);
    CAPTURE(cut);
    CHECK_THROWS_WITH_AS(load_checkpoint((run.path / "m.safetensors").string()),
                         doctest::Contains("m.safetensors"), pw::Error);
  }
  // A state file from another step than the weights: mixed-up folder.
  fs::path state = fs::path(ck) / "state.safetensors";
  SafetensorsFile s = load_safetensors(state.string());
  s.metadata["step"] = "99";
  std::vector<std::pair<std::string, Tensor>> ts(s.tensors.begin(), s.tensors.end());
  save_safetensors(state.string(), ts, s.metadata);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir), doctest::Contains("different step"), pw::Error);
  // `latest` naming a missing folder.
  fs::remove_all(ck);
  CHECK_THROWS_WITH_AS(latest_checkpoint(dir), doctest::Contains("does not exist"), pw::Error);
}

TEST_CASE("a non-finite loss stops training, naming the step, and keeps the last good checkpoint") {
  TempDir run;
  std::string dir = (run.path / "r").string();
  // An absurd learning rate drives the weights to overflow within a few steps.
  Config cfg = Config::parse(tiny_config("  checkpoint_steps: 1\n"), "tiny.yaml",
                             {"train.lr=1e30", "train.min_lr=0", "train.warmup_epochs=0"});
  std::string msg;
  try {
    train(cfg, quiet(dir));
  } catch (const Error& e) {
    msg = e.what();
  }
  CAPTURE(msg);
  REQUIRE(!msg.empty());
  CHECK(msg.find("at step") != std::string::npos);
  CHECK(msg.find("last good checkpoint") != std::string::npos);
  LoadedCheckpoint ck = load_checkpoint(dir);  // still whole and loadable
  CHECK(ck.has_state);
}

TEST_CASE("config mistakes reach the user as one clear sentence") {
  CHECK_THROWS_WITH_AS(Config::parse("model:\n  dpeth: 3\n", "cfg.yaml"),
                       doctest::Contains("cfg.yaml:2: unknown key 'model.dpeth' for model 'vit'; did you mean 'model.depth'?"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(Config::parse("train:\n  lr: fast\n", "cfg.yaml"),
                       doctest::Contains("train.lr: expected a float > 0, got 'fast'"), pw::Error);
  Config missing = Config::parse("data:\n  dataset: mnist\n  root: /nonexistent/mnist\n", "cfg.yaml");
  CHECK_THROWS_WITH_AS(open_split(missing, true), doctest::Contains("/nonexistent/mnist"), pw::Error);
  Config wrong_classes = Config::parse(tiny_config(), "tiny.yaml", {"model.num_classes=7"});
  CHECK_THROWS_WITH_AS(train(wrong_classes, quiet("/tmp/pw_never_created")),
                       doctest::Contains("set model.num_classes: 10"), pw::Error);
  if (!cuda::available()) {  // CPU-only machines: asking for cuda names the key and the fix
    Config cuda = Config::parse(tiny_config(), "tiny.yaml", {"train.device=cuda"});
    CHECK_THROWS_WITH_AS(train(cuda, quiet("/tmp/pw_never_created")),
                         doctest::Contains("train.device: cuda is not available on this machine"), pw::Error);
    CHECK_THROWS_WITH_AS(train(cuda, quiet("/tmp/pw_never_created")), doctest::Contains("set train.device: cpu or auto"),
                         pw::Error);
  }
  CHECK_THROWS_WITH_AS(Config::parse(tiny_config(), "tiny.yaml", {"model.type=vitt"}),
                       doctest::Contains("--set model.type=vitt: model.type: expected one of cvt|localvit|simple_vit|swin|vit, got 'vitt'; "
                                         "did you mean 'vit'?"),
                       pw::Error);
}

TEST_CASE("evaluation: top-1, top-5, loss, per-class recall and the confusion matrix by hand") {
  // 3 classes; logits chosen so predictions are 0, 2, 2, 1 for labels 0, 2, 1, 1.
  Tensor logits = from_vector({2, 1, 0,  0, 1, 3,  0, 1, 2,  0, 5, 1}, {4, 3});
  Tensor labels = from_indices({0, 2, 1, 1}, {4});
  EvalAccumulator acc(3);
  acc.add(logits, labels);
  EvalResult r = acc.result();
  CHECK(r.n == 4);
  CHECK(r.top1 == doctest::Approx(0.75));
  CHECK(r.top5 == doctest::Approx(1.0));
  CHECK(r.confusion == std::vector<int64_t>{1, 0, 0,  0, 1, 1,  0, 0, 1});
  CHECK(r.per_class == std::vector<double>{1.0, 0.5, 1.0});
  auto ce = [](std::vector<double> z, int t) {
    double m = *std::max_element(z.begin(), z.end()), s = 0;
    for (double v : z) s += std::exp(v - m);
    return std::log(s) + m - z[t];
  };
  double loss = (ce({2, 1, 0}, 0) + ce({0, 1, 3}, 2) + ce({0, 1, 2}, 1) + ce({0, 5, 1}, 1)) / 4;
  CHECK(r.loss == doctest::Approx(loss).epsilon(1e-6));
  CHECK(r.to_json().find("\"confusion\": [[1, 0, 0], [0, 1, 1], [0, 0, 1]]") != std::string::npos);
}

TEST_CASE("top-5 counts a label ranked fifth and not one ranked sixth") {
  Tensor logits = from_vector({6, 5, 4, 3, 2, 1,  6, 5, 4, 3, 2, 1}, {2, 6});
  EvalAccumulator acc(6);
  acc.add(logits, from_indices({4, 5}, {2}));
  CHECK(acc.result().top5 == doctest::Approx(0.5));
}

TEST_CASE("eval.hflip_tta: the mean of the logits of an image and of its mirror image") {
  std::shared_ptr<Module> m = build_model(Config::parse(tiny_config(), "tiny.yaml"));
  m->eval();
  NoGrad ng;
  Generator gen(3);
  Tensor x = normal({4, 1, 28, 28}, 0, 1, DType::F32, &gen);
  Tensor xm = empty_like(x);  // x mirrored left-right, by hand
  for (int64_t i = 0; i < 4 * 28; ++i)
    for (int64_t c = 0; c < 28; ++c) xm.data<float>()[i * 28 + c] = x.data<float>()[i * 28 + 27 - c];
  Tensor plain = eval_logits(*m, x, false), single;
  Tensor tta = eval_logits(*m, x, true, &single);
  Tensor want = ((*m)(x) + (*m)(xm)) * 0.5;
  REQUIRE(tta.shape() == Shape{4, 10});
  double diff_plain = 0;
  for (int64_t i = 0; i < 40; ++i) {
    CHECK(tta.data<float>()[i] == want.data<float>()[i]);
    CHECK(single.data<float>()[i] == plain.data<float>()[i]);
    diff_plain = std::max(diff_plain, (double)std::fabs(tta.data<float>()[i] - plain.data<float>()[i]));
  }
  CHECK(diff_plain > 1e-4);  // the model is not mirror-symmetric, so the average is a different number
  // An image and its mirror get the same logits, bit for bit (a + b == b + a).
  Tensor tta_m = eval_logits(*m, xm, true);
  for (int64_t i = 0; i < 40; ++i) CHECK(tta_m.data<float>()[i] == tta.data<float>()[i]);

  // evaluate() with the key on also reports the plain evaluation of the same pass.
  Config plain_cfg = Config::parse(tiny_config(), "tiny.yaml");
  Config tta_cfg = Config::parse(tiny_config() + "eval:\n  hflip_tta: true\n", "tiny.yaml");
  std::shared_ptr<Dataset> ds = open_split(plain_cfg, false);
  EvalResult p = evaluate(*m, plain_cfg, *ds), t = evaluate(*m, tta_cfg, *ds);
  CHECK(!p.hflip_tta);
  CHECK(t.hflip_tta);
  CHECK(t.single_view_top1 == p.top1);
  CHECK(t.single_view_loss == p.loss);
  CHECK(t.loss != p.loss);
  CHECK(t.to_json().find("\"hflip_tta\": true, \"single_view_loss\": ") != std::string::npos);
  CHECK(p.to_json().find("hflip_tta") == std::string::npos);
}

// The number after `"key": ` in the last line of a metrics.jsonl that has it.
double last_metric(const fs::path& file, const std::string& key) {
  std::ifstream f(file);
  std::string line, found;
  while (std::getline(f, line))
    if (line.find("\"" + key + "\": ") != std::string::npos) found = line;
  REQUIRE(!found.empty());
  return std::stod(found.substr(found.find("\"" + key + "\": ") + key.size() + 4));
}

TEST_CASE("with train.ema_decay the trainer also evaluates the EMA weights, and eval --ema reads them back") {
  TempDir run;
  fs::path cfg_file = run.path / "tiny.yaml";
  std::ofstream(cfg_file) << tiny_config("  ema_decay: 0.9\n");
  Config cfg = Config::load(cfg_file.string());
  std::string dir = (run.path / "r").string();
  TrainOptions o = quiet(dir);
  train(cfg, o);
  const double live = last_metric(fs::path(dir) / "metrics.jsonl", "test_top1");
  const double ema = last_metric(fs::path(dir) / "metrics.jsonl", "ema_test_top1");
  const double live_loss = last_metric(fs::path(dir) / "metrics.jsonl", "test_loss");
  const double ema_loss = last_metric(fs::path(dir) / "metrics.jsonl", "ema_test_loss");
  CHECK(live_loss != ema_loss);  // two different sets of weights
  // The checkpoint written after the evaluation holds the live weights again, and its EMA
  // weights give the EMA figure: the evaluation swapped them in and out exactly.
  LoadedCheckpoint ck = load_checkpoint(dir);
  std::shared_ptr<Dataset> ds = open_split(cfg, false);
  std::shared_ptr<Module> m = build_model(cfg);
  m->load_state_dict(ck.model);
  EvalResult rl = evaluate(*m, cfg, *ds);
  CHECK(rl.top1 == doctest::Approx(live).epsilon(1e-6));
  CHECK(rl.loss == doctest::Approx(live_loss).epsilon(1e-6));
  m->load_state_dict(std::map<std::string, Tensor>(ck.ema.begin(), ck.ema.end()));
  EvalResult re = evaluate(*m, cfg, *ds);
  CHECK(re.top1 == doctest::Approx(ema).epsilon(1e-6));
  CHECK(re.loss == doctest::Approx(ema_loss).epsilon(1e-6));
  CHECK(run_cli({"patchwork", "eval", cfg_file.string(), "--checkpoint", dir, "--ema", "--json"}) == 0);

  // A run without an EMA: --ema is refused with a message, not a crash.
  fs::path plain_file = run.path / "plain.yaml";
  std::ofstream(plain_file) << tiny_config();
  TrainOptions p = quiet((run.path / "p").string());
  p.max_steps = 2;
  train(Config::load(plain_file.string()), p);
  CHECK(run_cli({"patchwork", "eval", plain_file.string(), "--checkpoint", (run.path / "p").string(), "--ema"}) == 1);
}

TEST_CASE("the CLI: eval --json on a trained run, info, and errors as one line") {
  TempDir run;
  std::string dir = (run.path / "r").string();
  fs::path cfg_file = run.path / "tiny.yaml";
  std::ofstream(cfg_file) << tiny_config();
  TrainOptions o = quiet(dir);
  o.max_steps = 3;
  train(Config::load(cfg_file.string()), o);
  CHECK(run_cli({"patchwork", "eval", cfg_file.string(), "--checkpoint", dir, "--json"}) == 0);
  CHECK(run_cli({"patchwork", "info", cfg_file.string()}) == 0);
  CHECK(run_cli({"patchwork", "eval", cfg_file.string()}) == 1);  // no --checkpoint
  CHECK(run_cli({"patchwork", "train", (run.path / "nope.yaml").string()}) == 1);
  CHECK(run_cli({"patchwork", "frobnicate"}) == 2);
}
