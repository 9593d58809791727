#include "trainers/device.h"

#include <iostream>

#include "kernels/attention/attention.h"
#include "runtime/cuda/runtime.h"
#include "kernels/gemm/precision.h"

namespace pw {

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
    set_matmul_precision(Precision::FP32);
    set_attention_bf16(false);
    return;
  }
  set_matmul_precision(p == "tf32" ? Precision::TF32 : p == "bf16" ? Precision::BF16 : Precision::FP32);
  set_attention_bf16(p == "bf16");
}

}  // namespace pw
