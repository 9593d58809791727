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

// Applies train.precision for training on `d`: set_matmul_precision
// (kernels/gemm/precision.h) for matmul, linear and conv GEMMs, and bf16 q/k/v
// storage in the flash attention kernels (set_attention_bf16) for bf16. On the
// CPU everything stays fp32 (a note is printed for tf32/bf16 unless quiet).
void apply_precision(const Config& cfg, Device d, bool quiet);

}  // namespace pw
