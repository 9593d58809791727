// A model on CUDA against the same model on the CPU (test_zoo_win_cuda, test_train_cuda):
// built twice from one config (same seed: same weights), a train-mode forward and backward
// on one batch; logits, every parameter gradient and the buffers (BatchNorm running
// statistics) must match. Tolerances: atol 1e-4 / rtol 1e-3, float32 through a few blocks
// whose CUDA kernels sum in other (fixed) orders than the CPU ones.
#pragma once
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "trainers/config.h"
#include "trainers/trainer.h"

namespace pw::test {

// yaml: a model config; the batch: 4 images of C x S x S, labels 0 1 2 1.
inline void check_model_on_cuda(const std::string& yaml, int64_t C, int64_t S) {
  CAPTURE(yaml);
  Config cfg = Config::parse(yaml, "tiny.yaml");
  std::shared_ptr<Module> mc = build_model(cfg), mg = build_model(cfg);  // same seed: same weights
  mg->to(Device::CUDA);
  mc->train();
  mg->train();
  Generator gen(7);
  Tensor x = normal({4, C, S, S}, 0, 1, DType::F32, &gen);
  Tensor labels = from_indices({0, 1, 2, 1}, {4});
  Tensor yc = (*mc)(x), yg = (*mg)(x.to(Device::CUDA));
  REQUIRE(yg.device() == Device::CUDA);
  check_close(yg.to_vector(), yc.to_vector(), 1e-4, 1e-3, "logits");
  Tensor lc = cross_entropy(yc, labels), lg = cross_entropy(yg, labels.to(Device::CUDA));
  lc.backward();
  lg.backward();
  std::vector<Param> pc = mc->parameters(), pg = mg->parameters();
  REQUIRE(pc.size() == pg.size());
  for (size_t k = 0; k < pc.size(); ++k) {
    CAPTURE(pc[k].name);
    REQUIRE(pc[k].tensor.grad().defined());
    REQUIRE(pg[k].tensor.grad().defined());
    check_close(pg[k].tensor.grad().to_vector(), pc[k].tensor.grad().to_vector(), 1e-4, 1e-3, "gradient");
  }
  auto bc = mc->named_buffers(), bg = mg->named_buffers();
  REQUIRE(bc.size() == bg.size());
  for (size_t k = 0; k < bc.size(); ++k) {
    CAPTURE(bc[k].first);
    check_close(bg[k].second.to_vector(), bc[k].second.to_vector(), 1e-5, 1e-4, "running statistic");
  }
}

}  // namespace pw::test
