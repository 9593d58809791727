// attention_qkv and attention_qkv_bias on CUDA beyond the test rows' float32 parity
// (tests/ops/attention.cpp): bf16 storage, a gradient buffer shared with other ops,
// deterministic dbias, and what the kernels reject.
//
// Tolerances: float32 atol 1e-4, rtol 1e-3 (the flash kernels' own check against a double
// reference): the CPU sums each row of p v and ds k in one GEMM order, CUDA in tiles of 32
// keys with an online-softmax rescale, so the rounding differs by more than the elementwise
// 1e-5/1e-4. bf16 (set_attention_bf16): q, k, v, p, ds and o rounded to bf16 (~3 significant
// digits) against the float32 CPU: atol 3e-2, rtol 3e-2.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

namespace {

// qkv (B,N,3*NH*HD) with NH = heads.
ParityCase attn_case(const std::string& name, int64_t B, int64_t N, int64_t NH, int64_t HD) {
  const double scale = 1 / std::sqrt((double)HD);
  return {name, {In({B, N, 3 * NH * HD})}, [=](const X& x) { return attention_qkv(x[0], NH, scale); }, 1e-4, 1e-3};
}
ParityCase bias_case(const std::string& name, int64_t B, int64_t N, int64_t NH, int64_t HD, Shape bias,
                     bool bias_grad = true) {
  const double scale = 1 / std::sqrt((double)HD);
  In b(bias);
  if (!bias_grad) b = b.no_grad();
  return {name, {In({B, N, 3 * NH * HD}), b}, [=](const X& x) { return attention_qkv_bias(x[0], x[1], NH, scale); },
          1e-4, 1e-3};
}

std::vector<ParityCase> cases() {
  return {
      attn_case("attention_qkv HD 16", 2, 37, 3, 16),
      attn_case("attention_qkv HD 32 one token", 3, 1, 2, 32),
      attn_case("attention_qkv HD 64 N 130", 2, 130, 2, 64),
      attn_case("attention_qkv HD 128", 1, 70, 2, 128),
      bias_case("attention_qkv_bias (NH,N,N)", 2, 45, 3, 32, {3, 45, 45}),
      bias_case("attention_qkv_bias (B,1,N,N)", 2, 45, 3, 32, {2, 1, 45, 45}),
      bias_case("attention_qkv_bias (N,N)", 2, 33, 2, 64, {33, 33}),
      bias_case("attention_qkv_bias (B,NH,N,N)", 2, 40, 2, 16, {2, 2, 40, 40}),
      bias_case("attention_qkv_bias no bias grad", 2, 45, 3, 32, {3, 45, 45}, false),
  };
}

struct Bf16Scope {
  Bf16Scope() { set_attention_bf16(true); }
  ~Bf16Scope() { set_attention_bf16(false); }
};

}  // namespace

TEST_CASE("attention matches the cpu (bf16 storage)") {
  PW_SKIP_WITHOUT_CUDA();
  Bf16Scope bf16;
  std::vector<ParityCase> cs = cases();
  for (ParityCase& c : cs) c.atol = c.rtol = 3e-2;
  run_parity_cases(cs);
}

TEST_CASE("attention on CUDA adds into a gradient buffer other ops also fill") {
  // qkv feeds the attention and a product: one backward finds a fresh buffer, the other adds.
  // (Not in the parity table: its exact "twice the gradient" check does not hold for a sum
  // of two contributions, (a + b) + a + b != 2 (a + b) in floating point.)
  PW_SKIP_WITHOUT_CUDA();
  Tensor qkv0 = normal({2, 29, 3 * 2 * 32}, 0, 1), u = normal({2, 29, 64}, 0, 1);
  auto grad = [&](Device dev) {
    Tensor qkv = qkv0.to(dev).detach().requires_grad_();
    Tensor loss = sum(attention_qkv(qkv, 2, 0.3) * u.to(dev)) + sum(qkv * qkv);
    loss.backward();
    return qkv.grad().to_vector();
  };
  check_close(grad(Device::CUDA), grad(Device::CPU), 1e-4, 1e-3, "dqkv");
}

TEST_CASE("attention on CUDA: deterministic dbias and gradients") {
  PW_SKIP_WITHOUT_CUDA();
  // A (1,1,N,N) bias: every dbias element sums B*NH heads; two runs give the same bits.
  Tensor qkv0 = normal({3, 50, 3 * 4 * 32}, 0, 1).cuda(), bias0 = normal({1, 1, 50, 50}, 0, 1).cuda();
  Tensor u = normal({3, 50, 128}, 0, 1).cuda();
  auto run = [&] {
    Tensor qkv = qkv0.detach().requires_grad_(), bias = bias0.detach().requires_grad_();
    Tensor y = attention_qkv_bias(qkv, bias, 4, 0.2);
    y.backward(u);
    return std::vector<std::vector<double>>{y.to_vector(), qkv.grad().to_vector(), bias.grad().to_vector()};
  };
  CHECK(run() == run());
}

TEST_CASE("attention on CUDA rejects what the kernels cannot run") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor q48 = zeros({2, 5, 3 * 2 * 48}).cuda();  // HD 48
  CHECK_THROWS_WITH_AS(attention_qkv(q48, 2, 1.0), doctest::Contains("attention_qkv"), pw::Error);
  Tensor q64 = zeros({2, 5, 3 * 2 * 16}, DType::F64).cuda();
  CHECK_THROWS_WITH_AS(attention_qkv(q64, 2, 1.0), doctest::Contains("float32"), pw::Error);
  Tensor q = zeros({2, 5, 3 * 2 * 16}).cuda();
  CHECK_THROWS_WITH_AS(attention_qkv_bias(q, zeros({5, 5}), 2, 1.0), doctest::Contains("different devices"),
                       pw::Error);
}
