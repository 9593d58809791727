// Process-wide precision of float32 matrix products on CUDA (matmul, linear,
// linear_gelu, the GEMMs under conv). Tensors stay float32 everywhere; only the
// multiply inside cuBLAS changes. float64 and CPU GEMMs ignore it.
//   FP32: full float32 multiply (the default).
//   TF32: cuBLAS compute type CUBLAS_COMPUTE_32F_FAST_TF32 (10-bit mantissa inputs,
//         float32 accumulation). NOTE: relative error ~1e-3 per product.
//   BF16: mixed precision: the float32 operands are converted to bf16 on the fly
//         (round to nearest even) into scratch buffers, multiplied with float32
//         accumulation and float32 output. NOTE: relative error ~4e-3 per product.
#pragma once

namespace pw {

enum class Precision { FP32, TF32, BF16 };

void set_matmul_precision(Precision p);
Precision matmul_precision();
const char* precision_name(Precision p);  // "fp32", "tf32", "bf16"

}  // namespace pw
