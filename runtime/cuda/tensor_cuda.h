// Raw-pointer CUDA launchers behind Tensor itself (creation, dtype conversion)
// and the engine (gradient accumulation). All run on cuda::stream(), never sync.
#pragma once
#include <cstdint>

#include "runtime/dtype.h"

namespace pw {

// y[i] = v.   y: (n) of dtype t (f32, f64 or i64)
void fill_cuda(void* y, DType t, double v, int64_t n);
// dst[i] = (dst dtype) src[i].   dst, src: (n); f32, f64, i64 each way
void convert_cuda(void* dst, DType to, const void* src, DType from, int64_t n);
// y[i] += alpha * x[i] (alpha == 1: a plain add).   y, x: (n)
template <class T> void axpy_cuda(T* y, const T* x, double alpha, int64_t n);
// y[i] = alpha * x[i].   y, x: (n)
template <class T> void scale_copy_cuda(T* y, const T* x, double alpha, int64_t n);

}  // namespace pw
