// The device and the math precision a run trains with (train.device,
// train.precision), shared by `patchwork train` and `patchwork bench train`.
#pragma once
#include "autograd/tensor.h"
#include "trainers/config.h"

namespace pw {

// train.device: "cpu"; "cuda" (a clear one-sentence error naming the key when
// no usable GPU is present); "auto" = cuda when available, else cpu, and the
// choice is printed unless quiet.
Device resolve_device(const Config& cfg, bool quiet);

// The matmul precision train.precision asks for.
enum class MatmulPrecision { FP32, TF32, BF16 };
// Applies train.precision for training on `d`. On the CPU everything stays
// fp32 (a note is printed for tf32/bf16 unless quiet).
// NOTE: kernels/gemm's set_matmul_precision (gemm-conv helper) is not in this
// branch yet; until it is, the setting is kept here (current_matmul_precision)
// and apply_precision is the one place to switch over to it.
void apply_precision(const Config& cfg, Device d, bool quiet);
MatmulPrecision current_matmul_precision();

}  // namespace pw
