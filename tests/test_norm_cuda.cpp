// CPU/CUDA parity of the norm family (layer_norm, batch_norm): forward, every
// input gradient, and batch_norm's running statistics.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

// Fresh running statistics on the input's device for each call.
static Tensor bn_train(const X& x) {
  const int64_t C = x[0].size(1);
  Tensor rm = zeros({C}, x[0].dtype(), x[0].device()), rv = ones({C}, x[0].dtype(), x[0].device());
  return batch_norm(x[0], x[1], x[2], rm, rv, /*training=*/true);
}

TEST_CASE("layer_norm and batch_norm match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"layer_norm affine", {In({3, 5, 7}), In({7}), In({7})}, [](const X& x) { return layer_norm(x[0], x[1], x[2]); }},
      {"layer_norm plain", {In({33, 9})}, [](const X& x) { return layer_norm(x[0], Tensor(), Tensor()); }},
      {"layer_norm weight only", {In({4, 7}), In({7})}, [](const X& x) { return layer_norm(x[0], x[1], Tensor(), 1e-3); }},
      // Many rows: several 64-row chunks of the dw/db partial sums; C > the block, not a multiple of 32.
      // dw, db sum 300 products: atol scaled to the sum (float accumulation order differs).
      {"layer_norm large", {In({300, 777}), In({777}), In({777})},
       [](const X& x) { return layer_norm(x[0], x[1], x[2]); }, 1e-4, 1e-4},
      {"batch_norm train 2d", {In({5, 3}), In({3}), In({3})}, bn_train},
      {"batch_norm train 3d", {In({3, 5, 7}), In({5}), In({5})}, bn_train},
      {"batch_norm train 4d", {In({8, 6, 9, 11}), In({6}), In({6})}, bn_train, 1e-4, 1e-4},
      {"batch_norm train no affine", {In({3, 5, 7})},
       [](const X& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }},
      {"batch_norm eval 4d", {In({3, 5, 3, 3}), In({5}), In({5}), In({5}).no_grad(), In({5}, Domain::Positive).no_grad()},
       [](const X& x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], /*training=*/false); }},
  });
}

TEST_CASE("batch_norm updates the running statistics on cuda as on the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({6, 4, 5, 3}, 0.5, 2.0, DType::F32);
  Tensor rm = normal({4}, 0, 1, DType::F32), rv = uniform({4}, 0.5, 2.0, DType::F32);
  Tensor rmg = rm.to(Device::CUDA), rvg = rv.to(Device::CUDA);
  Tensor w = normal({4}, 1, 0.1, DType::F32), b = normal({4}, 0, 0.1, DType::F32);
  for (int step = 0; step < 3; ++step) {
    Tensor yc = batch_norm(x, w, b, rm, rv, true, 0.2);
    Tensor yg = batch_norm(x.to(Device::CUDA), w.to(Device::CUDA), b.to(Device::CUDA), rmg, rvg, true, 0.2);
    check_close(yg.to_vector(), yc.to_vector(), 1e-5, 1e-4, "batch_norm y");
  }
  check_close(rmg.to_vector(), rm.to_vector(), 1e-6, 1e-5, "running_mean");
  check_close(rvg.to_vector(), rv.to_vector(), 1e-6, 1e-5, "running_var");
}

TEST_CASE("norm ops reject mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({4, 6}, 0, 1).to(Device::CUDA), w = ones({6});
  CHECK_THROWS_WITH_AS(layer_norm(x, w, Tensor()), doctest::Contains("layer_norm"), pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, w, Tensor(), Tensor(), Tensor(), true), doctest::Contains("batch_norm"), pw::Error);
}
