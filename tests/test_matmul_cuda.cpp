// CPU/CUDA parity of matmul, linear and linear_gelu (forward and every input
// gradient) at the reduced matmul precisions (tf32, bf16; fp32 parity runs from the
// test rows, tests/ops/matmul.cpp), and the fused cuBLASLt epilogue against the
// unfused composition on the device.
#include <cstring>

#include "kernels/ops.h"
#include "kernels/gemm/precision.h"
#include "tests/cuda_parity.h"
#if defined(PW_HAVE_CUDA)
#include "kernels/gemm/gemm_cuda.h"
#endif

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

namespace {

// Restores the process-wide precision when a test leaves.
struct PrecisionScope {
  Precision old = matmul_precision();
  explicit PrecisionScope(Precision p) { set_matmul_precision(p); }
  ~PrecisionScope() { set_matmul_precision(old); }
};

// One table for every precision; atol/rtol are scaled by the caller.
std::vector<ParityCase> matmul_cases(double atol, double rtol) {
  std::vector<ParityCase> c = {
      {"matmul 2d", {In({65, 47}), In({47, 33})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul batched a, 2-d b", {In({3, 17, 40}), In({40, 24})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul 2-d a, batched b", {In({17, 40}), In({3, 40, 24})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul same batch", {In({2, 3, 17, 33}), In({2, 3, 33, 9})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul general broadcast", {In({2, 1, 7, 12}), In({3, 12, 5})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul b broadcast over a", {In({3, 1, 9, 16}), In({1, 4, 16, 7})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul vec @ batched", {In({20}), In({3, 20, 6})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"matmul mat @ vec", {In({13, 20}), In({20})}, [](const X& x) { return matmul(x[0], x[1]); }},
      {"linear bias", {In({4, 31, 48}), In({40, 48}), In({40})}, [](const X& x) { return linear(x[0], x[1], x[2]); }},
      {"linear no bias", {In({33, 21}), In({17, 21})}, [](const X& x) { return linear(x[0], x[1]); }},
      // 2100 rows: the bias gradient's column sum spans three row chunks.
      {"linear many rows", {In({2100, 24}), In({16, 24}), In({16})}, [](const X& x) { return linear(x[0], x[1], x[2]); }},
      // Dout % 8 == 0: the cuBLASLt epilogue path; Dout = 17: the unfused fallback.
      {"linear_gelu fused", {In({2, 37, 64}), In({96, 64}), In({96})},
       [](const X& x) { return linear_gelu(x[0], x[1], x[2]); }},
      {"linear_gelu unfused", {In({29, 20}), In({17, 20}), In({17})},
       [](const X& x) { return linear_gelu(x[0], x[1], x[2]); }},
  };
  for (ParityCase& p : c) {
    p.atol = atol;
    p.rtol = rtol;
  }
  return c;
}

}  // namespace

TEST_CASE("matmul, linear and linear_gelu match the cpu (tf32)") {
  PW_SKIP_WITHOUT_CUDA();
  PrecisionScope ps(Precision::TF32);
  // NOTE: tf32 keeps 10 mantissa bits (rel. error 2^-11 per operand); with N(0,1)
  // inputs and K <= 64 (2100 for the weight gradient) errors reach ~1e-2 absolute.
  run_parity_cases(matmul_cases(5e-2, 1e-2));
}

TEST_CASE("matmul, linear and linear_gelu match the cpu (bf16)") {
  PW_SKIP_WITHOUT_CUDA();
  PrecisionScope ps(Precision::BF16);
  // NOTE: bf16 keeps 7 mantissa bits (rel. error 2^-9 per operand): 4x tf32's error, and
  // it grows with sqrt(K) and, in linear_gelu's gradients, with the forward's error
  // through gelu''. Measured on the CPU backend (PW_CUDA=EMU) with N(0,1) inputs: max
  // |error| ~0.37 for the weight gradient over K = 2100 rows, ~0.32 for linear_gelu's
  // input gradient; atol 0.2 failed about every second run.
  run_parity_cases(matmul_cases(1.0, 4e-2));
}

TEST_CASE("linear_gelu: the cuBLASLt epilogue equals the composition on the device") {
  PW_SKIP_WITHOUT_CUDA();
#if defined(PW_HAVE_CUDA)
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16}) {
    PrecisionScope ps(p);
    CAPTURE(precision_name(p));
    const int64_t R = 77, Din = 64, Dout = 128;
    std::vector<Tensor> in = make_inputs({In({R, Din}), In({Dout, Din}), In({Dout})});
    Tensor x = in[0].to(DType::F32).cuda(), w = in[1].to(DType::F32).cuda(), b = in[2].to(DType::F32).cuda();
    Tensor y1 = empty({R, Dout}, DType::F32, Device::CUDA), pre1 = empty_like(y1);
    Tensor y2 = empty_like(y1), pre2 = empty_like(y1);
    const bool fused = linear_gelu_gemm_cuda(y1.data<float>(), pre1.data<float>(), x.data<float>(),
                                                w.data<float>(), b.data<float>(), R, Din, Dout);
    linear_gelu_gemm_cuda(y2.data<float>(), pre2.data<float>(), x.data<float>(), w.data<float>(),
                             b.data<float>(), R, Din, Dout, /*force_unfused=*/true);
    std::printf("linear_gelu %s: cuBLASLt GELU_AUX_BIAS epilogue %s\n", precision_name(p),
                fused ? "ran" : "declined (unfused fallback)");
    // Same products, possibly another kernel: only rounding differs.
    const double tol = p == Precision::FP32 ? 1e-4 : p == Precision::TF32 ? 5e-2 : 2e-1;
    check_close(pre1.to_vector(), pre2.to_vector(), tol, 1e-2, "pre-activation");
    check_close(y1.to_vector(), y2.to_vector(), tol, 1e-2, "gelu (tanh) output");
  }
#endif
}

TEST_CASE("cuda matmul and linear backward are deterministic") {
  PW_SKIP_WITHOUT_CUDA();
  auto run = [] {
    std::vector<Tensor> in = make_inputs({In({3000, 32}), In({24, 32}), In({24})});
    return in;
  };
  std::vector<Tensor> in = run();
  std::vector<std::vector<double>> grads[2];
  for (int t = 0; t < 2; ++t) {
    // detach(): make_inputs' tensors require grad, so their copies are not leaves.
    Tensor x = in[0].detach().to(DType::F32).cuda().requires_grad_(),
           w = in[1].detach().to(DType::F32).cuda().requires_grad_(),
           b = in[2].detach().to(DType::F32).cuda().requires_grad_();
    Tensor y = linear(x, w, b);
    Tensor z = matmul(y.reshape({3, 1000, 24}), w);
    sum(z * z).backward();
    grads[t] = {x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()};
  }
  for (int k = 0; k < 3; ++k) CHECK(grads[0][k] == grads[1][k]);
}

TEST_CASE("matmul and linear reject mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = zeros({3, 4}), b = zeros({4, 5}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul"), pw::Error);
  CHECK_THROWS_WITH_AS(linear(a, zeros({5, 4}, DType::F32, Device::CUDA)), doctest::Contains("linear"), pw::Error);
  CHECK_THROWS_WITH_AS(linear_gelu(a, zeros({5, 4}), zeros({5}, DType::F32, Device::CUDA)),
                       doctest::Contains("linear_gelu"), pw::Error);
}
