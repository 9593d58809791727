// Matrix products with autograd, on top of kernels/gemm.
#pragma once
#include "autograd/tensor.h"

namespace pw {

// a (...,M,K) @ b (...,K,N) -> (...,M,N); the batch dims broadcast (numpy rules). As in
// torch, a 1-D a is a row (1,K) and a 1-D b a column (K,1), that dim dropped from the result.
Tensor matmul(const Tensor& a, const Tensor& b);

// x (...,Din), w (Dout,Din), b (Dout) or an undefined Tensor -> x @ w^T + b: (...,Dout).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// x (...,Din), w (Dout,Din), b (Dout) -> gelu_tanh(x @ w^T + b): (...,Dout), the MLP's first
// half in one op. On CUDA (float) one cuBLASLt matmul with the GELU_AUX_BIAS epilogue; on
// the CPU linear then gelu_tanh. NOTE: it is the tanh GELU (cuBLASLt's epilogue is the
// tanh approximation), i.e. gelu_tanh(linear(x, w, b)), not the erf gelu().
Tensor linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b);

}  // namespace pw
