// Training on CUDA end to end against the CPU: a tiny SimpleViT from the same
// weights on the same batches, 3 AdamW steps with gradient clipping; the loss
// and every parameter gradient match at each step. Then train() itself with
// train.device cuda vs cpu (DeviceLoader, deferred loss read-back, checkpoint
// of a CUDA model). Skips without a device (printed reason).
//
// Tolerances: losses atol 1e-4 / rtol 1e-4 and gradients atol 1e-4 / rtol 1e-3:
// float32 through 2 transformer blocks whose CUDA kernels sum in other (fixed)
// orders than the CPU ones, compounded over 3 optimizer steps.
#include <filesystem>
#include <random>

#include "kernels/ops.h"
#include "nn/vit.h"
#include "tests/cuda_parity.h"
#include "tests/model_parity.h"
#include "tests/test_data_util.h"
#include "trainers/checkpoint.h"
#include "trainers/config.h"
#include "trainers/optim.h"
#include "trainers/trainer.h"

namespace fs = std::filesystem;
using namespace pw;
using namespace pw::test;

namespace {

const char* kModel =
    "model:\n  type: simple_vit\n  image_size: 28\n  patch_size: 7\n  channels: 1\n  num_classes: 10\n"
    "  dim: 32\n  depth: 2\n  heads: 2\n  dim_head: 16\n  mlp_dim: 64\n";

// n random 28x28 MNIST-format images with random labels (IDX files).
void write_split(const std::string& dir, const std::string& prefix, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> px((size_t)n * 28 * 28), labels(n);
  for (auto& p : px) p = (uint8_t)(rng() % 256);
  for (auto& l : labels) l = (uint8_t)(rng() % 10);
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", idx_bytes({(uint32_t)n, 28, 28}, px));
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", idx_bytes({(uint32_t)n}, labels));
}

}  // namespace

TEST_CASE("Module::to(CUDA) moves a ViT's fixed position table, which stays out of the state_dict") {
  PW_SKIP_WITHOUT_CUDA();
  for (const char* pe : {"sincos2d", "sinusoidal"}) {
    CAPTURE(pe);
    VitOptions o;
    o.image_size = 8, o.patch_size = 4, o.dim = 32, o.depth = 1, o.heads = 2, o.mlp_dim = 16, o.pos_embed = pe;
    VisionTransformer m(o);
    const size_t keys = m.state_dict().size();
    m.to(Device::CUDA);
    CHECK(m.pos_embed.device() == Device::CUDA);
    CHECK(m.state_dict().size() == keys);
    Tensor y = m(zeros({2, 1, 8, 8}, DType::F32, Device::CUDA));  // was: "add: inputs on different devices"
    CHECK(y.device() == Device::CUDA);
    m.to(Device::CPU);
    CHECK(m.pos_embed.device() == Device::CPU);
  }
}

TEST_CASE("every relative encoding gives the CUDA model the CPU model's logits and gradients") {
  PW_SKIP_WITHOUT_CUDA();
  // a 3x3 grid + class token; clip 4 > the grid, so Shaw/Huang read 25 of their 81 rows
  const std::vector<std::string> encodings = {
      "rel_pos: shaw\n  rel_pos_clip: 4", "rel_pos: huang\n  rel_pos_clip: 4", "rel_pos: xl",
      "rel_pos: swin", "rel_pos: alibi", "rel_pos: rope2d", "rel_pos: irpe\n  irpe_mode: contextual\n  irpe_on: qkv",
      "attention: sasa\n  sasa_kernel: 3"};
  for (const std::string& e : encodings) {
    CAPTURE(e);
    const std::string yaml = "model:\n  type: vit\n  image_size: 12\n  patch_size: 4\n  channels: 1\n"
                             "  num_classes: 10\n  dim: 32\n  depth: 1\n  heads: 2\n  dim_head: 16\n"
                             "  mlp_dim: 32\n  pos_embed: none\n  " + e + "\n";
    check_model_on_cuda(yaml, 1, 12);
  }
}

TEST_CASE("a tiny ViT trains 3 steps on CUDA as on the cpu: losses and every gradient") {
  PW_SKIP_WITHOUT_CUDA();
  Config cfg = Config::parse(kModel, "tiny.yaml");
  std::shared_ptr<Module> mc = build_model(cfg), mg = build_model(cfg);  // same seed: same weights
  auto sc = mc->state_dict(), sg = mg->state_dict();
  REQUIRE(sc.size() == sg.size());
  for (size_t i = 0; i < sc.size(); ++i) REQUIRE(sc[i].second.to_vector() == sg[i].second.to_vector());
  mg->to(Device::CUDA);
  std::vector<Param> pc = mc->parameters(), pg = mg->parameters();
  AdamW oc(pc, 0.9, 0.999, 1e-8, 0.05), og(pg, 0.9, 0.999, 1e-8, 0.05);
  Generator gen(11);
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    Tensor x = normal({8, 1, 28, 28}, 0, 1, DType::F32, &gen);
    std::vector<int64_t> y(8);
    for (int64_t i = 0; i < 8; ++i) y[i] = (i * 3 + step) % 10;
    Tensor labels = from_indices(y, {8});
    Tensor lc = cross_entropy((*mc)(x), labels);
    Tensor lg = cross_entropy((*mg)(x.to(Device::CUDA)), labels.to(Device::CUDA));
    REQUIRE(lg.device() == Device::CUDA);
    check_close(lg.to_vector(), lc.to_vector(), 1e-4, 1e-4, "loss");
    oc.zero_grad();
    og.zero_grad();
    lc.backward();
    lg.backward();
    for (size_t k = 0; k < pc.size(); ++k) {
      CAPTURE(pc[k].name);
      REQUIRE(pg[k].tensor.grad().defined());
      REQUIRE(pg[k].tensor.grad().device() == Device::CUDA);
      check_close(pg[k].tensor.grad().to_vector(), pc[k].tensor.grad().to_vector(), 1e-4, 1e-3, "gradient");
    }
    const double nc = clip_grad_norm(pc, 1.0);
    CHECK(clip_grad_norm_tensor(pg, 1.0).item() == doctest::Approx(nc).epsilon(1e-4));
    oc.step(1e-3);
    og.step(1e-3);
  }
  for (size_t k = 0; k < pc.size(); ++k) {
    CAPTURE(pc[k].name);
    check_close(pg[k].tensor.to_vector(), pc[k].tensor.to_vector(), 1e-4, 1e-3, "parameter after 3 steps");
  }
}

TEST_CASE("train() with train.device cuda matches train.device cpu over 3 steps, checkpoint included") {
  PW_SKIP_WITHOUT_CUDA();
  TempDir tmp;
  const fs::path& dir = tmp.path;
  write_split(tmp / "data", "train", 96, 1);
  write_split(tmp / "data", "t10k", 40, 2);
  const std::string yaml = std::string(kModel) + "data:\n  dataset: mnist\n  root: " + (dir / "data").string() +
                           "\n  num_workers: 1\n  crop_padding: 0\n"
                           "train:\n  epochs: 1\n  batch_size: 32\n  lr: 0.001\n  threads: 2\n  clip_grad: 1.0\n"
                           "  ema_decay: 0.9\n  log_every: 2\n  eval_every: 0\n  checkpoint_every: 0\n";
  TrainResult r[2];
  const char* devices[] = {"cpu", "cuda"};
  for (int d = 0; d < 2; ++d) {
    Config cfg = Config::parse(yaml, "tiny.yaml", {std::string("train.device=") + devices[d]});
    TrainOptions o;
    o.out_dir = (dir / devices[d]).string();
    o.quiet = true;
    r[d] = train(cfg, o);
  }
  REQUIRE(r[0].losses.size() == 3);  // 96 / 32 steps, every loss read back
  REQUIRE(r[1].losses.size() == 3);
  check_close(r[1].losses, r[0].losses, 1e-4, 1e-4, "train() losses");
  CHECK(r[1].test_top1 == doctest::Approx(r[0].test_top1).epsilon(1e-6));  // 40 images: one flip would show
  // The CUDA run's checkpoint holds host tensors that match the cpu run's.
  LoadedCheckpoint a = load_checkpoint(latest_checkpoint(r[0].run_dir)), b = load_checkpoint(latest_checkpoint(r[1].run_dir));
  REQUIRE(a.model.size() == b.model.size());
  for (auto& [name, t] : a.model) {
    const std::string& tensor = name;  // clang < 16 can't capture bindings
    CAPTURE(tensor);
    REQUIRE(b.model.count(name));
    CHECK(b.model.at(name).device() == Device::CPU);
    check_close(b.model.at(name).to_vector(), t.to_vector(), 1e-4, 1e-3, "checkpointed weight");
  }
}
