#include "runtime/cuda/common.cuh"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

namespace {

template <class T>
__global__ void fill_kernel(T* y, T v, int64_t n) {
  PW_GRID_STRIDE(i, n) y[i] = v;
}
template <class To, class From>
__global__ void convert_kernel(To* dst, const From* src, int64_t n) {
  PW_GRID_STRIDE(i, n) dst[i] = (To)src[i];
}
template <class T>
__global__ void axpy_kernel(T* y, const T* x, T alpha, bool plain, int64_t n) {
  if (plain) {
    PW_GRID_STRIDE(i, n) y[i] += x[i];
  } else {
    PW_GRID_STRIDE(i, n) y[i] += alpha * x[i];
  }
}
template <class T>
__global__ void scale_copy_kernel(T* y, const T* x, T alpha, int64_t n) {
  PW_GRID_STRIDE(i, n) y[i] = alpha * x[i];
}

template <class To>
void convert_from(To* dst, const void* src, DType from, int64_t n) {
  const unsigned g = cuda::grid_for(n);
  switch (from) {
    case DType::F32: convert_kernel<<<g, cuda::kBlock, 0, cuda::stream()>>>(dst, (const float*)src, n); break;
    case DType::F64: convert_kernel<<<g, cuda::kBlock, 0, cuda::stream()>>>(dst, (const double*)src, n); break;
    case DType::I64: convert_kernel<<<g, cuda::kBlock, 0, cuda::stream()>>>(dst, (const int64_t*)src, n); break;
    default: PW_FAIL("to: converting from ", dtype_name(from), " is not supported on CUDA");
  }
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void fill_cuda(void* y, DType t, double v, int64_t n) {
  if (n == 0) return;
  const unsigned g = cuda::grid_for(n);
  switch (t) {
    case DType::F32: fill_kernel<<<g, cuda::kBlock, 0, cuda::stream()>>>((float*)y, (float)v, n); break;
    case DType::F64: fill_kernel<<<g, cuda::kBlock, 0, cuda::stream()>>>((double*)y, v, n); break;
    case DType::I64: fill_kernel<<<g, cuda::kBlock, 0, cuda::stream()>>>((int64_t*)y, (int64_t)v, n); break;
    default: PW_FAIL("full: dtype ", dtype_name(t), " is not supported on CUDA");
  }
  PW_CUDA_LAUNCH_CHECK();
}

void convert_cuda(void* dst, DType to, const void* src, DType from, int64_t n) {
  if (n == 0) return;
  switch (to) {
    case DType::F32: convert_from((float*)dst, src, from, n); break;
    case DType::F64: convert_from((double*)dst, src, from, n); break;
    case DType::I64: convert_from((int64_t*)dst, src, from, n); break;
    default: PW_FAIL("to: converting to ", dtype_name(to), " is not supported on CUDA");
  }
}

template <class T> void axpy_cuda(T* y, const T* x, double alpha, int64_t n) {
  if (n == 0) return;
  axpy_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, (T)alpha, alpha == 1.0, n);
  PW_CUDA_LAUNCH_CHECK();
}
template <class T> void scale_copy_cuda(T* y, const T* x, double alpha, int64_t n) {
  if (n == 0) return;
  scale_copy_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(y, x, (T)alpha, n);
  PW_CUDA_LAUNCH_CHECK();
}
template void axpy_cuda<float>(float*, const float*, double, int64_t);
template void axpy_cuda<double>(double*, const double*, double, int64_t);
template void scale_copy_cuda<float>(float*, const float*, double, int64_t);
template void scale_copy_cuda<double>(double*, const double*, double, int64_t);

}  // namespace pw
