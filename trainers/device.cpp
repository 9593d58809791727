#include "trainers/device.h"

#include <iostream>

#include "kernels/cuda/runtime.h"

namespace pw {

namespace {
MatmulPrecision g_precision = MatmulPrecision::FP32;
}

Device resolve_device(const Config& cfg, bool quiet) {
  const std::string& dev = cfg.get_string("train.device");
  if (dev == "cpu") return Device::CPU;
  if (dev == "cuda") {
    if (!cuda::available())
      cfg.fail("train.device", "cuda is not available on this machine (" + cuda::unavailable_reason() +
                                   "); set train.device: cpu or auto");
    return Device::CUDA;
  }
  // auto
  const bool gpu = cuda::available();
  if (!quiet)
    std::cout << "patchwork: train.device auto: training on " << (gpu ? "cuda" : "cpu")
              << (gpu ? std::string() : " (" + cuda::unavailable_reason() + ")") << "\n"
              << std::flush;
  return gpu ? Device::CUDA : Device::CPU;
}

void apply_precision(const Config& cfg, Device d, bool quiet) {
  const std::string& p = cfg.get_string("train.precision");
  if (d == Device::CPU) {
    if (!quiet && p != "fp32")
      std::cout << "patchwork: note: train.precision " << p << " applies to CUDA; training in fp32 on the CPU\n";
    g_precision = MatmulPrecision::FP32;
    return;
  }
  g_precision = p == "tf32" ? MatmulPrecision::TF32 : p == "bf16" ? MatmulPrecision::BF16 : MatmulPrecision::FP32;
  // Switch-over point: set_matmul_precision(<kernels/gemm's enum>) once kernels/gemm provides it.
}

MatmulPrecision current_matmul_precision() { return g_precision; }

}  // namespace pw
