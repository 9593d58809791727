// attention_qkv(_bias) on CUDA: the flash kernels (flash_attention_cuda.cu) between head
// split/merge permutes, as the tensor-level kernels of attention_kernels.h. Everything
// runs on cuda::stream() and never synchronises.
#include <cuda_bf16.h>

#include "kernels/attention/attention.h"
#include "kernels/attention/attention_kernels.h"
#include "kernels/attention/flash_attention_cuda.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

using cuda::from_float;
using cuda::to_float;

// Offset in the (S,B,NH,N,HD) layout of element i of the (B,N,S,NH,HD) layout. The fast
// index d is shared, so neighbouring threads touch neighbouring elements on both sides.
__device__ __forceinline__ int64_t split_offset(int64_t i, int64_t B, int64_t N, int64_t S, int64_t NH,
                                                int64_t HD) {
  const int64_t d = i % HD;
  int64_t r = i / HD;
  const int64_t h = r % NH;
  r /= NH;
  const int64_t s = r % S;
  r /= S;
  const int64_t n = r % N;
  const int64_t b = r / N;
  return (((s * B + b) * NH + h) * N + n) * HD + d;
}

// dst (S,B,NH,N,HD)  src (B,N,S,NH,HD); one thread per element of src.
template <class D>
__global__ void split_heads_kernel(D* __restrict__ dst, const float* __restrict__ src, int64_t B, int64_t N,
                                   int64_t S, int64_t NH, int64_t HD) {
  PW_GRID_STRIDE(i, B * N * S * NH * HD) { dst[split_offset(i, B, N, S, NH, HD)] = from_float<D>(src[i]); }
}

// dst (B,N,S,NH,HD)  src (S,B,NH,N,HD); one thread per element of dst.
template <class D>
__global__ void merge_heads_kernel(float* __restrict__ dst, const D* __restrict__ src, int64_t B, int64_t N,
                                   int64_t S, int64_t NH, int64_t HD, bool accumulate) {
  PW_GRID_STRIDE(i, B * N * S * NH * HD) {
    const float v = to_float(src[split_offset(i, B, N, S, NH, HD)]);
    dst[i] = accumulate ? dst[i] + v : v;
  }
}

// dst (n) += src (n), float32.
__global__ void add_into_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  PW_GRID_STRIDE(i, n) { dst[i] = dst[i] + src[i]; }
}

// dst (S,B,NH,N,HD) T  =  src (B,N,S,NH,HD) float32, converted (bf16: round to nearest even).
// S = 3 splits a packed qkv into q, k, v; S = 1 turns dy (B,N,NH*HD) into (B,NH,N,HD).
// T = float or bf16_t.
template <class T>
void split_heads(T* dst, const float* src, int64_t B, int64_t N, int64_t S, int64_t NH, int64_t HD) {
  using D = typename cuda::DeviceType<T>::type;
  const int64_t n = B * N * S * NH * HD;
  if (n == 0) return;
  split_heads_kernel<D><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(reinterpret_cast<D*>(dst), src, B,
                                                                                 N, S, NH, HD);
  PW_CUDA_LAUNCH_CHECK();
}

// dst (B,N,S,NH,HD) float32  (=, or += when accumulate)  src (S,B,NH,N,HD) T.
// S = 1: y from the flash output o; S = 3: dqkv from dq, dk, dv.
template <class T>
void merge_heads(float* dst, const T* src, int64_t B, int64_t N, int64_t S, int64_t NH, int64_t HD,
                 bool accumulate) {
  using D = typename cuda::DeviceType<T>::type;
  const int64_t n = B * N * S * NH * HD;
  if (n == 0) return;
  merge_heads_kernel<D><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
      dst, reinterpret_cast<const D*>(src), B, N, S, NH, HD, accumulate);
  PW_CUDA_LAUNCH_CHECK();
}

FlashBiasLayout bias_layout(const AttnDims& d) {
  FlashBiasLayout bl;
  bl.Bb = (int)d.Bb;
  bl.Hb = (int)d.Hb;
  return bl;
}

// y (B,N,NH*HD) float32 = flash attention of qkv (B,N,3*NH*HD) float32; fills s.qkvp, s.o, s.lse.
template <class T>
void flash_forward(Tensor& y, AttnSaved& s, const Tensor& qkv, const Tensor& bias, float scale) {
  const AttnDims& d = s.d;
  const int64_t hs = d.B * d.NH * d.N * d.HD;  // elements of q (and of k, v)
  T* qp = static_cast<T*>(s.qkvp.raw());
  split_heads<T>(qp, qkv.data<float>(), d.B, d.N, 3, d.NH, d.HD);
  flash_attention_forward_cuda<T>(static_cast<T*>(s.o.raw()), s.lse.data<float>(), qp, qp + hs, qp + 2 * hs,
                                  bias.defined() ? bias.data<float>() : nullptr, bias_layout(d), (int)d.B, (int)d.NH,
                                  (int)d.N, (int)d.HD, scale, cuda::compute_stream());
  merge_heads<T>(y.data<float>(), static_cast<const T*>(s.o.raw()), d.B, d.N, 1, d.NH, d.HD, false);
}

// Forward was y = merge(flash(split(qkv), bias)). dqkv (+)= merge(dq, dk, dv). The flash
// kernel writes dbias (=, deterministically, already broadcast-reduced): straight into a
// fresh buffer, else into a temporary that is then added.
template <class T>
void flash_backward(GradBuf dqkv, GradBuf dbias, const Tensor& dy, const AttnSaved& s, const Tensor& bias,
                    float scale) {
  const AttnDims& d = s.d;
  const int64_t hs = d.B * d.NH * d.N * d.HD;
  const DType st = s.qkvp.dtype();
  Tensor dout = empty({d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  Tensor dqkvp = empty({3, d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  Tensor delta = empty({d.B, d.NH, d.N}, DType::F32, Device::CUDA);
  const bool want_b = bias.defined() && dbias;
  Tensor db_tmp = want_b && dbias.accumulate ? empty(bias.shape(), DType::F32, Device::CUDA) : Tensor();
  float* pdb = !want_b ? nullptr : dbias.accumulate ? db_tmp.data<float>() : dbias.data<float>();
  split_heads<T>(static_cast<T*>(dout.raw()), dy.data<float>(), d.B, d.N, 1, d.NH, d.HD);
  const T* qp = static_cast<const T*>(s.qkvp.raw());
  T* dp = static_cast<T*>(dqkvp.raw());
  flash_attention_backward_cuda<T>(dp, dp + hs, dp + 2 * hs, pdb, delta.data<float>(), qp, qp + hs, qp + 2 * hs,
                                   static_cast<const T*>(s.o.raw()), static_cast<const T*>(dout.raw()),
                                   s.lse.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                                   bias_layout(d), (int)d.B, (int)d.NH, (int)d.N, (int)d.HD, scale,
                                   cuda::compute_stream());
  if (dqkv) merge_heads<T>(dqkv.data<float>(), dp, d.B, d.N, 3, d.NH, d.HD, dqkv.accumulate);
  if (want_b && dbias.accumulate) {
    const int64_t n = db_tmp.numel();
    if (n > 0) {
      add_into_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(dbias.data<float>(),
                                                                               db_tmp.data<float>(), n);
      PW_CUDA_LAUNCH_CHECK();
    }
  }
}

}  // namespace

void attention_forward_cuda(Tensor& y, AttnSaved& s, const Tensor& qkv, const Tensor& bias, double scale) {
  const AttnDims& d = s.d;
  const char* op = d.op;
  PW_CHECK(qkv.dtype() == DType::F32, op, ": on CUDA qkv must be float32, got ", dtype_name(qkv.dtype()),
           "; convert with .to(DType::F32)");
  PW_CHECK(flash_attention_cuda_supports_head_dim((int)d.HD), op, ": on CUDA the head dim must be 16, 32, 64 or ",
           "128, got HD = ", d.HD, " from qkv ", qkv.str(), " with ", d.NH, " heads");
  PW_CHECK(d.B * d.NH <= 65535 && d.N <= (1 << 30), op, ": qkv ", qkv.str(), " with ", d.NH,
           " heads is too large for the CUDA kernels (B*NH <= 65535)");
  const bool bf16 = attention_bf16();
  const DType st = bf16 ? DType::BF16 : DType::F32;
  s.qkvp = empty({3, d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  s.o = empty({d.B, d.NH, d.N, d.HD}, st, Device::CUDA);
  s.lse = empty({d.B, d.NH, d.N}, DType::F32, Device::CUDA);
  if (bf16)
    flash_forward<bf16_t>(y, s, qkv, bias, (float)scale);
  else
    flash_forward<float>(y, s, qkv, bias, (float)scale);
}

void attention_backward_cuda(GradBuf dqkv, GradBuf dbias, const Tensor& dy, const AttnSaved& s, const Tensor& bias,
                             double scale) {
  if (!dqkv && !(bias.defined() && dbias)) return;
  if (s.qkvp.dtype() == DType::BF16)
    flash_backward<bf16_t>(dqkv, dbias, dy, s, bias, (float)scale);
  else
    flash_backward<float>(dqkv, dbias, dy, s, bias, (float)scale);
}

}  // namespace pw
