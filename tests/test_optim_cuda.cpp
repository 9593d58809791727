// The optimizers of trainers/optim.h on CUDA against the cpu (the kernels'
// own CPU/CUDA parity rows are in tests/ops/optim.cpp): per-parameter step
// counts, skipped parameters and state, several steps each, fresh random
// gradients every step; Module::to keeping parameter identity; state_dict /
// load_state_dict on a CUDA model. Skips without a device (printed reason).
//
// Tolerances: float32, atol 1e-5 / rtol 1e-4 (cuda_design.md) for parameters
// and moments after 4 steps; the gradient norm (double accumulation over f32
// squares, different but fixed summation order) to 1e-9 relative.
#include <memory>

#include "kernels/ops.h"
#include "nn/module.h"
#include "tests/cuda_parity.h"
#include "trainers/optim.h"

using namespace pw;
using namespace pw::test;

namespace {

// Sizes cover one chunk, several chunks (kChunk = 16384) with a ragged tail, and one element.
const std::vector<Shape> kShapes = {{7, 33}, {33}, {5, 40001}, {1}, {3, 17, 9}};

// normal(0, scale) values, f32, on the CPU.
Tensor rand_f32(const Shape& s, double scale = 1.0) {
  std::normal_distribution<double> nd(0, scale);
  std::vector<double> v((size_t)numel_of(s));
  for (double& e : v) e = nd(test_rng());
  return from_vector(v, s, DType::F32);
}

// The same parameters twice: on the CPU and on CUDA. Every other one has decay off.
struct Twin {
  std::vector<Param> cpu, gpu;
  Twin() {
    for (size_t k = 0; k < kShapes.size(); ++k) {
      Tensor v = rand_f32(kShapes[k]);
      Tensor c = v.clone(), g = v.to(Device::CUDA);
      c.requires_grad_(true);
      g.requires_grad_(true);
      cpu.push_back({"p" + std::to_string(k), c, k % 2 == 0});
      gpu.push_back({"p" + std::to_string(k), g, k % 2 == 0});
    }
  }
  // Fresh random gradients (scaled by `scale`), the same on both; `skip` gets none.
  void feed(double scale = 1.0, int skip = -1) {
    for (size_t k = 0; k < cpu.size(); ++k) {
      cpu[k].tensor.zero_grad();
      gpu[k].tensor.zero_grad();
      if ((int)k == skip) continue;
      Tensor g = rand_f32(kShapes[k], scale);
      cpu[k].tensor.set_grad(g.clone());
      gpu[k].tensor.set_grad(g.to(Device::CUDA));
    }
  }
  void check_params(const std::string& what, double atol = 1e-5, double rtol = 1e-4) const {
    for (size_t k = 0; k < cpu.size(); ++k) {
      CAPTURE(k);
      REQUIRE(gpu[k].tensor.device() == Device::CUDA);
      check_close(gpu[k].tensor.to_vector(), cpu[k].tensor.to_vector(), atol, rtol, what);
    }
  }
};

void check_state(const Optimizer& gpu, const Optimizer& cpu, const std::string& what) {
  auto sg = gpu.state(), sc = cpu.state();
  REQUIRE(sg.size() == sc.size());
  for (size_t i = 0; i < sg.size(); ++i) {
    CAPTURE(sg[i].first);
    REQUIRE(sg[i].first == sc[i].first);
    check_close(sg[i].second.to_vector(), sc[i].second.to_vector(), 1e-5, 1e-4, what + " " + sg[i].first);
  }
}

struct Tiny : Module {
  Tensor w, b, stat, count;
  Tiny() {
    w = add_param("w", rand_f32({9, 5}));
    b = add_param("b", rand_f32({9}), false);
    stat = add_buffer("stat", rand_f32({9}));
    count = add_buffer("count", from_indices({3}, {1}));  // I64: the EMA skips it
  }
  const char* type_name() const override { return "Tiny"; }
};

}  // namespace

TEST_CASE("AdamW on CUDA (one multi-tensor launch) matches the cpu over 4 steps") {
  PW_SKIP_WITHOUT_CUDA();
  Twin t;
  AdamW oc(t.cpu, 0.8, 0.95, 1e-8, 0.1), og(t.gpu, 0.8, 0.95, 1e-8, 0.1);
  PoisonScope poison;  // moments are zeros(); every other CUDA block starts as NaN
  const double lrs[] = {1e-2, 3e-2, 2e-2, 5e-3};
  for (int s = 0; s < 4; ++s) {
    CAPTURE(s);
    t.feed(1.0, s == 1 ? 2 : -1);  // step 1: p2 has no gradient (its own step count lags)
    oc.step(lrs[s]);
    og.step(lrs[s]);
    t.check_params("AdamW params");
    check_state(og, oc, "AdamW state");
  }
  CHECK(og.param_steps == oc.param_steps);
  CHECK(og.param_steps[2] == 3);
}

TEST_CASE("SGD on CUDA matches the cpu: momentum, Nesterov, plain") {
  PW_SKIP_WITHOUT_CUDA();
  struct C { double momentum, wd; bool nesterov; };
  for (C c : {C{0.9, 0.01, false}, C{0.9, 0.01, true}, C{0.0, 0.05, false}}) {
    CAPTURE(c.momentum);
    CAPTURE(c.nesterov);
    Twin t;
    SGD oc(t.cpu, c.momentum, c.wd, c.nesterov), og(t.gpu, c.momentum, c.wd, c.nesterov);
    PoisonScope poison;
    for (int s = 0; s < 4; ++s) {
      CAPTURE(s);
      t.feed(1.0, s == 2 ? 0 : -1);
      oc.step(0.05);
      og.step(0.05);
      t.check_params("SGD params");
      check_state(og, oc, "SGD state");
    }
  }
}

TEST_CASE("global-norm clipping on CUDA matches the cpu, deterministically") {
  PW_SKIP_WITHOUT_CUDA();
  Twin t;
  for (double max_norm : {1.0, 1e6}) {  // clips / leaves the gradients alone
    CAPTURE(max_norm);
    t.feed(3.0, 1);
    const double nc = clip_grad_norm(t.cpu, max_norm);
    Tensor ng = clip_grad_norm_tensor(t.gpu, max_norm);
    REQUIRE(ng.device() == Device::CUDA);
    CHECK(ng.item() == doctest::Approx(nc).epsilon(1e-9));
    for (size_t k = 0; k < t.cpu.size(); ++k) {
      if (k == 1) continue;
      CAPTURE(k);
      check_close(t.gpu[k].tensor.grad().to_vector(), t.cpu[k].tensor.grad().to_vector(), 1e-6, 1e-5,
                  "clipped gradient");
    }
  }
  // Two-stage fixed-order reduction, no atomics: the same bits every time.
  t.feed(1.0);
  const double a = grad_norm(t.gpu), b = grad_norm(t.gpu);
  CHECK(a == b);
  CHECK(a == doctest::Approx(grad_norm(t.cpu)).epsilon(1e-9));
}

TEST_CASE("the EMA on CUDA matches the cpu; Module::to keeps identity; state_dict round trip") {
  PW_SKIP_WITHOUT_CUDA();
  Tiny mc, mg;
  auto init = mc.state_dict();
  mg.load_state_dict(std::map<std::string, Tensor>(init.begin(), init.end()));
  Tensor w = mg.w;  // a handle taken before the move
  std::vector<Param> before = mg.parameters();
  mg.to(Device::CUDA);
  CHECK(mg.device() == Device::CUDA);
  CHECK(w.device() == Device::CUDA);
  CHECK(w.same(mg.parameters()[0].tensor));
  CHECK(before[0].tensor.same(mg.w));
  CHECK(mg.w.requires_grad());
  CHECK(mg.count.device() == Device::CUDA);
  // state_dict of a CUDA model: on CUDA, same values.
  auto sc = mc.state_dict(), sg = mg.state_dict();
  for (size_t i = 0; i < sc.size(); ++i) CHECK(sg[i].second.to_vector() == sc[i].second.to_vector());

  Ema ec(mc, 0.9), eg(mg, 0.9);
  for (int s = 0; s < 3; ++s) {
    Tensor nw = rand_f32({9, 5}), nb = rand_f32({9}), ns = rand_f32({9});
    copy_into(mc.w, nw);
    copy_into(mc.b, nb);
    copy_into(mc.stat, ns);
    copy_into(mg.w, nw);  // copy_into crosses devices
    copy_into(mg.b, nb);
    copy_into(mg.stat, ns);
    ec.update(mc);
    eg.update(mg);
    for (size_t i = 0; i < ec.shadow.size(); ++i) {
      CAPTURE(ec.shadow[i].first);
      REQUIRE(eg.shadow[i].second.device() == Device::CUDA);
      check_close(eg.shadow[i].second.to_vector(), ec.shadow[i].second.to_vector(), 1e-6, 1e-5, "ema");
    }
  }
  // load_state_dict from host tensors onto the CUDA model.
  Tiny other;
  auto so = other.state_dict();
  mg.load_state_dict(std::map<std::string, Tensor>(so.begin(), so.end()));
  CHECK(mg.w.device() == Device::CUDA);
  CHECK(mg.w.to_vector() == other.w.to_vector());
  CHECK(mg.count.to_vector() == other.count.to_vector());
}

TEST_CASE("an optimizer built before Module::to is a clear error") {
  PW_SKIP_WITHOUT_CUDA();
  Tiny m;
  AdamW opt(m.parameters());
  m.to(Device::CUDA);
  m.w.set_grad(rand_f32({9, 5}).to(Device::CUDA));
  CHECK_THROWS_WITH_AS(opt.step(1e-3), doctest::Contains("build the optimizer after Module::to"), pw::Error);
}

TEST_CASE("Module::to(cuda) without a usable device is a clear error (runs everywhere)") {
  if (cuda_ready()) return;  // the cases above cover a machine with a GPU
  Tiny m;
  CHECK_THROWS_WITH_AS(m.to(Device::CUDA), doctest::Contains("CUDA is not available"), pw::Error);
  CHECK(m.device() == Device::CPU);
  m.to(Device::CPU);  // a no-op
  CHECK(m.w.device() == Device::CPU);
}
