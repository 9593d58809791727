// CPU/CUDA parity harness (ggml's test-backend-ops, STYLE.md Tests 2).
//
//   ParityCase{"gelu", {In({64, 33})}, [](const std::vector<Tensor>& x) { return gelu(x[0]); }}
//
// run_parity_case() draws fresh random inputs (gradcheck.h's domains), runs the
// op on the CPU and on CUDA from the same values, and checks the output and the
// gradient of every input that wants one (upstream gradient random, never ones)
// with |got - ref| <= atol + rtol*|ref|. While the CUDA side runs, the caching
// allocator fills every block it hands out with NaN bytes, so an output or
// gradient element a kernel forgets to write fails the comparison. A second
// backward checks that CUDA gradients accumulate (exactly twice the first).
//
// Tolerances (cuda_design.md): float32 atol 1e-5, rtol 1e-4 unless a case says
// otherwise with its reason.
#pragma once
#include <cstdio>
#include <string>

#include "runtime/cuda/runtime.h"
#include "tests/gradcheck.h"
#include "tests/skip.h"

namespace pw::test {

inline bool cuda_ready() { return cuda::available(); }

// Returns from the calling TEST_CASE, printing why, when no CUDA device can be used.
#define PW_SKIP_WITHOUT_CUDA()                                                            \
  do {                                                                                    \
    if (!::pw::test::cuda_ready()) {                                                      \
      const std::string pw_reason_ = ::pw::cuda::unavailable_reason();                    \
      ::pw::test::note_skipped(pw_reason_);                                               \
      MESSAGE("skipped: " << pw_reason_);                                                 \
      return;                                                                             \
    }                                                                                     \
  } while (0)

struct ParityCase {
  std::string name;
  std::vector<In> inputs;
  OpFn fn;
  double atol = 1e-5, rtol = 1e-4;
  DType dtype = DType::F32;  // of the float inputs (Index inputs stay i64)
};

// Poisons fresh CUDA blocks for its lifetime.
struct PoisonScope {
  PoisonScope() { cuda::set_alloc_poison(true); }
  ~PoisonScope() { cuda::set_alloc_poison(false); }
};

inline void run_parity_case(const ParityCase& c) {
  CAPTURE(c.name);
  std::vector<Tensor> base = make_inputs(c.inputs);
  std::vector<Tensor> xc, xg;  // cpu, cuda
  for (size_t k = 0; k < base.size(); ++k) {
    Tensor v = base[k].detach();
    if (v.dtype() == DType::F64 || v.dtype() == DType::F32) v = v.to(c.dtype);
    Tensor cpu = v.clone();
    Tensor gpu = v.to(Device::CUDA);
    if (c.inputs[k].grad) {
      cpu.requires_grad_();
      gpu.requires_grad_();
    }
    xc.push_back(cpu);
    xg.push_back(gpu);
  }
  PoisonScope poison;
  Tensor yc = c.fn(xc);
  Tensor yg = c.fn(xg);
  REQUIRE(yg.device() == Device::CUDA);
  REQUIRE(yg.shape() == yc.shape());
  REQUIRE(yg.dtype() == yc.dtype());
  check_close(yg.to_vector(), yc.to_vector(), c.atol, c.rtol, c.name + " forward");

  bool any_grad = false;
  for (const In& in : c.inputs) any_grad = any_grad || in.grad;
  if (!any_grad) return;
  std::normal_distribution<double> nd(0, 1);
  std::vector<double> uv(yc.numel());
  for (auto& e : uv) e = nd(test_rng());
  Tensor uc = from_vector(uv, yc.shape(), yc.dtype());
  Tensor ug = uc.to(Device::CUDA);
  yc.backward(uc);
  yg.backward(ug, /*retain_graph=*/true);
  std::vector<std::vector<double>> first(xg.size());
  for (size_t k = 0; k < xg.size(); ++k) {
    if (!c.inputs[k].grad) continue;
    CAPTURE(k);
    Tensor gg = xg[k].grad();
    REQUIRE_MESSAGE(gg.defined(), "no CUDA gradient reached input ", k);
    REQUIRE(gg.device() == Device::CUDA);
    REQUIRE(gg.shape() == xg[k].shape());
    first[k] = gg.to_vector();
    check_close(first[k], xc[k].grad().to_vector(), c.atol, c.rtol, c.name + " d(input " + std::to_string(k) + ")");
  }
  yg.backward(ug);  // accumulation: exactly twice the first gradient
  for (size_t k = 0; k < xg.size(); ++k) {
    if (!c.inputs[k].grad) continue;
    std::vector<double> twice = first[k];
    for (double& e : twice) e *= 2;
    check_close(xg[k].grad().to_vector(), twice, 0, 0, c.name + " accumulated d(input " + std::to_string(k) + ")");
  }
}

inline void run_parity_cases(const std::vector<ParityCase>& cases) {
  for (const ParityCase& c : cases) {
    SUBCASE(c.name.c_str()) { run_parity_case(c); }
  }
}

}  // namespace pw::test
