// Scalar-type dispatch and CPU threading helpers shared by every CPU kernel.
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// Whether this library was built with the CUDA backend. Guard every call into
// CUDA code with `if constexpr (kHaveCuda)` so that a PW_CUDA=OFF build compiles.
#if defined(PW_HAVE_CUDA)
inline constexpr bool kHaveCuda = true;
#else
inline constexpr bool kHaveCuda = false;
#endif

// Calls f(T{}) with T = float or double according to `t`; any other dtype is a
// user error naming the op.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    default: PW_FAIL(op, ": expected a f32 or f64 tensor, got ", dtype_name(t));
  }
}

// Checks that every tensor is defined, on the CPU, and shares x's dtype.
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_cpu(const char* op, const Tensor& a);  // "op: not yet on CUDA" for a cuda tensor
// All inputs of an op live on one device; the error names the op and both devices.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);

// Work below this many elements stays on one thread: the OpenMP fork costs more.
constexpr int64_t kParallelGrain = 1 << 15;

}  // namespace pw
