// CPU/CUDA parity of conv2d and conv1d with the cuDNN engine (the native engine's
// parity runs from the test rows, tests/ops/conv.cpp), native against cuDNN on the
// device, and tf32. unfold's parity is a test row too (tests/ops/unfold.cpp).
#include "kernels/ops.h"
#include "kernels/gemm/precision.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

namespace {

struct EngineScope {
  ConvEngine old = conv_engine();
  explicit EngineScope(ConvEngine e) { set_conv_engine(e); }
  ~EngineScope() { set_conv_engine(old); }
};

// NOTE: float sums over C*KH*KW (and B*OH*OW for dw) terms in another order than the
// CPU's GEMM: atol 1e-4 for sums of up to ~600 N(0,1) products.
[[maybe_unused]] std::vector<ParityCase> conv_cases() {  // unused without cuDNN
  const double at = 1e-4, rt = 1e-4;
  return {
      {"conv2d 3x3 pad 1 bias", {In({2, 5, 9, 11}), In({7, 5, 3, 3}), In({7})},
       [](const X& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }, at, rt},
      {"conv2d stride 2 no bias", {In({3, 4, 13, 10}), In({6, 4, 3, 3})},
       [](const X& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {1, 0}); }, at, rt},
      {"conv2d dilation 2, 5x3", {In({2, 3, 14, 12}), In({5, 3, 5, 3}), In({5})},
       [](const X& x) { return conv2d(x[0], x[1], x[2], {1, 2}, {2, 1}, {2, 2}); }, at, rt},
      {"conv2d patch embed 4x4 s4", {In({2, 3, 16, 16}), In({24, 3, 4, 4}), In({24})},
       [](const X& x) { return conv2d(x[0], x[1], x[2], {4, 4}); }, at, rt},
      {"conv2d 1x1", {In({3, 16, 7, 5}), In({9, 16, 1, 1}), In({9})},
       [](const X& x) { return conv2d(x[0], x[1], x[2]); }, at, rt},
      {"conv2d groups 2", {In({2, 6, 8, 9}), In({4, 3, 3, 3}), In({4})},
       [](const X& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); }, at, rt},
      {"depthwise 3x3 s1", {In({2, 8, 10, 9}), In({8, 1, 3, 3}), In({8})},
       [](const X& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 8); }, at, rt},
      {"depthwise 5x5 s2 x2 channels", {In({2, 4, 11, 12}), In({8, 1, 5, 5})},
       [](const X& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {2, 2}, {1, 1}, 4); }, at, rt},
      {"depthwise 7x7 dilation 2", {In({1, 6, 15, 15}), In({6, 1, 7, 7}), In({6})},
       [](const X& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {3, 3}, {2, 2}, 6); }, at, rt},
      {"conv1d k3 pad 1", {In({3, 5, 17}), In({8, 5, 3}), In({8})},
       [](const X& x) { return conv1d(x[0], x[1], x[2], 1, 1); }, at, rt},
      {"conv1d depthwise k4 s2", {In({2, 6, 20}), In({6, 1, 4})},
       [](const X& x) { return conv1d(x[0], x[1], Tensor(), 2, 1, 1, 6); }, at, rt},
  };
}

}  // namespace

TEST_CASE("conv2d and conv1d match the cpu (cuDNN engine)") {
  PW_SKIP_WITHOUT_CUDA();
#if defined(PW_HAVE_CUDNN)
  EngineScope es(ConvEngine::Cudnn);
  run_parity_cases(conv_cases());
#else
  pw::test::note_skipped("built without cuDNN");
#endif
}

TEST_CASE("conv2d: native engine equals cuDNN on the device") {
  PW_SKIP_WITHOUT_CUDA();
#if defined(PW_HAVE_CUDNN)
  for (const ParityCase& c : conv_cases()) {
    CAPTURE(c.name);
    std::vector<Tensor> base = make_inputs(c.inputs);
    std::vector<std::vector<double>> out[2];
    for (int e = 0; e < 2; ++e) {
      EngineScope es(e == 0 ? ConvEngine::Native : ConvEngine::Cudnn);
      std::vector<Tensor> xs;
      for (const Tensor& t : base) xs.push_back(t.detach().to(DType::F32).cuda().requires_grad_());
      Tensor y = c.fn(xs);
      Tensor u = (y * 0.5).detach();  // a fixed, non-constant upstream gradient
      sum(y * u).backward();
      out[e].push_back(y.to_vector());
      for (const Tensor& t : xs) out[e].push_back(t.grad().to_vector());
    }
    for (size_t k = 0; k < out[0].size(); ++k) check_close(out[0][k], out[1][k], 1e-4, 1e-4, c.name + " native vs cudnn");
  }
#else
  pw::test::note_skipped("built without cuDNN");
#endif
}

TEST_CASE("conv2d matches the cpu in tf32 (looser)") {
  PW_SKIP_WITHOUT_CUDA();
  Precision old = matmul_precision();
  set_matmul_precision(Precision::TF32);
  // NOTE: tf32 operands (rel. error 2^-11): ~1e-2 absolute on these sums.
  run_parity_cases({{"conv2d 3x3 tf32", {In({2, 8, 9, 9}), In({12, 8, 3, 3}), In({12})},
                     [](const X& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }, 5e-2, 1e-2}});
  set_matmul_precision(old);
}

TEST_CASE("set_conv_engine(Cudnn) without cuDNN is a clear error") {
#if defined(PW_HAVE_CUDNN)
  EngineScope es(ConvEngine::Cudnn);
  CHECK(conv_engine() == ConvEngine::Cudnn);
#else
  CHECK_THROWS_WITH_AS(set_conv_engine(ConvEngine::Cudnn), doctest::Contains("set_conv_engine"), pw::Error);
#endif
}

TEST_CASE("conv2d rejects mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  CHECK_THROWS_WITH_AS(conv2d(zeros({1, 2, 5, 5}), zeros({3, 2, 3, 3}, DType::F32, Device::CUDA)),
                       doctest::Contains("conv2d"), pw::Error);
}
