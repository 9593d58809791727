#include "kernels/gemm/precision.h"

#include <atomic>

namespace pw {

namespace {
std::atomic<Precision> g_precision{Precision::FP32};
}

void set_matmul_precision(Precision p) { g_precision.store(p); }
Precision matmul_precision() { return g_precision.load(); }
const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

}  // namespace pw
