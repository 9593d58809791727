// Multi-tensor optimizer kernels (see optim_cuda.h). Every launch covers all
// tensors: the work is cut into fixed chunks of kChunk elements, one block per
// chunk, and a device table says which tensor and range each block updates.
#include <algorithm>
#include <cstring>
#include <memory>

#include "autograd/tensor.h"
#include "runtime/cuda/common.cuh"
#include "kernels/optim/optim_cuda.h"
#include "kernels/optim/optim_math.h"

namespace pw {

namespace {

constexpr int64_t kChunk = 16384;  // elements per block: 64 per thread at kBlock = 256

// Block b updates elements [begin, end) of tensor `tensor`.
struct Chunk {
  int64_t tensor, begin, end;
};

// A pair of same-sized arrays (clip: a = grad; EMA: a = ema, b = param; norm: b = grad).
template <class T>
struct Pair {
  T* a;
  const T* b;
  int64_t n;
};

// The per-tensor entries and the chunk list of one launch, in one device block.
// `block` returns to the caching allocator when this dies; the allocator is
// ordered by the compute stream, so the kernel that reads it runs first.
template <class Entry>
struct Table {
  std::shared_ptr<Storage> block;
  const Entry* entries = nullptr;
  const Chunk* chunks = nullptr;
  int64_t nchunks = 0;
};

template <class Entry>
Table<Entry> upload(const std::vector<Entry>& es, const std::vector<int64_t>& sizes) {
  Table<Entry> t;
  std::vector<Chunk> cs;
  for (size_t k = 0; k < sizes.size(); ++k)
    for (int64_t b = 0; b < sizes[k]; b += kChunk) cs.push_back({(int64_t)k, b, std::min(b + kChunk, sizes[k])});
  t.nchunks = (int64_t)cs.size();
  if (cs.empty()) return t;
  PW_CHECK(t.nchunks < (int64_t)1 << 31, "optimizer (CUDA): ", t.nchunks, " chunks exceed the grid limit");
  const size_t eb = (es.size() * sizeof(Entry) + 15) / 16 * 16;  // chunks start 16-byte aligned
  const size_t total = eb + cs.size() * sizeof(Chunk);
  std::vector<unsigned char> host(total, 0);
  std::memcpy(host.data(), es.data(), es.size() * sizeof(Entry));
  std::memcpy(host.data() + eb, cs.data(), cs.size() * sizeof(Chunk));
  t.block = std::make_shared<Storage>(total, Device::CUDA);
  cuda::copy_h2d(t.block->data, host.data(), total);
  t.entries = reinterpret_cast<const Entry*>(t.block->data);
  t.chunks = reinterpret_cast<const Chunk*>(static_cast<unsigned char*>(t.block->data) + eb);
  return t;
}

// --- AdamW ---

template <class T>
__global__ void adamw_kernel(const AdamWTensor<T>* ts, const Chunk* cs, double lr, double beta1, double beta2,
                             double eps, double weight_decay) {
  const Chunk c = cs[blockIdx.x];
  const AdamWTensor<T> t = ts[c.tensor];
  // The tensor's coefficients, in double then cast, exactly as the CPU loop.
  const double step = (double)t.step;
  const double bc1 = 1 - pow(beta1, step), bc2 = 1 - pow(beta2, step);
  const double wd = t.decay ? weight_decay : 0.0;
  const T b1 = (T)beta1, b2 = (T)beta2, decay = (T)(1 - lr * wd), ss = (T)(lr / bc1), bs = (T)sqrt(bc2),
          e = (T)eps;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x)
    math::adamw_update(t.p[i], t.m[i], t.v[i], t.g[i], b1, b2, decay, ss, bs, e);
}

// --- SGD ---

template <class T>
__global__ void sgd_kernel(const SgdTensor<T>* ts, const Chunk* cs, double lr, double momentum,
                           double weight_decay, bool nesterov) {
  const Chunk c = cs[blockIdx.x];
  const SgdTensor<T> t = ts[c.tensor];
  const T l = (T)lr, mu = (T)momentum, w = (T)(t.decay ? weight_decay : 0.0);
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x)
    math::sgd_update(t.p[i], t.buf ? t.buf + i : (T*)nullptr, t.g[i], l, mu, w, nesterov, t.first != 0);
}

// --- global gradient norm: stage 1 per chunk, stage 2 one block ---

// partial[b] = sum over chunk b of g^2 (double).   partial: (nchunks)
template <class T>
__global__ void sumsq_chunks_kernel(double* partial, const Pair<T>* ts, const Chunk* cs) {
  __shared__ double shared[32];
  const Chunk c = cs[blockIdx.x];
  const T* g = ts[c.tensor].b;
  double s = 0;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) s += (double)g[i] * (double)g[i];
  s = cuda::block_sum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
// norm[0] = sqrt(sum of partial), folded by one block in a fixed order.
__global__ void fold_norm_kernel(double* norm, const double* partial, int64_t n) {
  __shared__ double shared[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = cuda::block_sum(s, shared);
  if (threadIdx.x == 0) norm[0] = sqrt(s);
}

template <class T>
__global__ void clip_scale_kernel(const Pair<T>* ts, const Chunk* cs, const double* norm, double max_norm) {
  const double coef = max_norm / (norm[0] + 1e-6);
  if (coef >= 1) return;  // as the CPU: no scaling at all
  const Chunk c = cs[blockIdx.x];
  T* g = ts[c.tensor].a;
  const T k = (T)coef;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) g[i] *= k;
}

// --- EMA ---

template <class T>
__global__ void ema_kernel(const Pair<T>* ts, const Chunk* cs, double decay) {
  const Chunk c = cs[blockIdx.x];
  const Pair<T> t = ts[c.tensor];
  const T d = (T)decay;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) t.a[i] = math::ema_update(t.a[i], t.b[i], d);
}

}  // namespace

template <class T>
void adamw_step_cuda(const std::vector<AdamWTensor<T>>& ts, double lr, double beta1, double beta2, double eps,
                     double weight_decay) {
  std::vector<int64_t> sizes;
  for (const auto& t : ts) sizes.push_back(t.n);
  Table<AdamWTensor<T>> tab = upload(ts, sizes);
  if (tab.nchunks == 0) return;
  adamw_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, lr, beta1,
                                                                               beta2, eps, weight_decay);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void sgd_step_cuda(const std::vector<SgdTensor<T>>& ts, double lr, double momentum, double weight_decay,
                   bool nesterov) {
  std::vector<int64_t> sizes;
  for (const auto& t : ts) sizes.push_back(t.n);
  Table<SgdTensor<T>> tab = upload(ts, sizes);
  if (tab.nchunks == 0) return;
  sgd_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, lr, momentum,
                                                                             weight_decay, nesterov);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void grad_norm_cuda(double* norm, const std::vector<const T*>& grads, const std::vector<int64_t>& sizes) {
  PW_CHECK(grads.size() == sizes.size(), "grad_norm (CUDA): ", grads.size(), " gradients but ", sizes.size(), " sizes");
  std::vector<Pair<T>> es;
  for (size_t k = 0; k < grads.size(); ++k) es.push_back({nullptr, grads[k], sizes[k]});
  Table<Pair<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) {  // no gradient at all: the norm is 0
    PW_CUDA_CHECK(cudaMemsetAsync(norm, 0, sizeof(double), cuda::stream()));
    return;
  }
  Storage partial((size_t)tab.nchunks * sizeof(double), Device::CUDA);
  sumsq_chunks_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>((double*)partial.data,
                                                                                     tab.entries, tab.chunks);
  PW_CUDA_LAUNCH_CHECK();
  fold_norm_kernel<<<1, cuda::kBlock, 0, cuda::stream()>>>(norm, (const double*)partial.data, tab.nchunks);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void clip_scale_cuda(const std::vector<T*>& grads, const std::vector<int64_t>& sizes, const double* norm,
                     double max_norm) {
  PW_CHECK(grads.size() == sizes.size(), "clip_grad_norm (CUDA): ", grads.size(), " gradients but ", sizes.size(),
           " sizes");
  std::vector<Pair<T>> es;
  for (size_t k = 0; k < grads.size(); ++k) es.push_back({grads[k], nullptr, sizes[k]});
  Table<Pair<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) return;
  clip_scale_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, norm,
                                                                                  max_norm);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void ema_update_cuda(const std::vector<T*>& ema, const std::vector<const T*>& p, const std::vector<int64_t>& sizes,
                     double decay) {
  PW_CHECK(ema.size() == p.size() && p.size() == sizes.size(), "Ema (CUDA): ", ema.size(), " shadows, ", p.size(),
           " tensors, ", sizes.size(), " sizes");
  std::vector<Pair<T>> es;
  for (size_t k = 0; k < p.size(); ++k) es.push_back({ema[k], p[k], sizes[k]});
  Table<Pair<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) return;
  ema_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, decay);
  PW_CUDA_LAUNCH_CHECK();
}

#define PW_OPTIM_INSTANTIATE(T)                                                                                 \
  template void adamw_step_cuda<T>(const std::vector<AdamWTensor<T>>&, double, double, double, double, double); \
  template void sgd_step_cuda<T>(const std::vector<SgdTensor<T>>&, double, double, double, bool);              \
  template void grad_norm_cuda<T>(double*, const std::vector<const T*>&, const std::vector<int64_t>&);         \
  template void clip_scale_cuda<T>(const std::vector<T*>&, const std::vector<int64_t>&, const double*, double); \
  template void ema_update_cuda<T>(const std::vector<T*>&, const std::vector<const T*>&,                       \
                                   const std::vector<int64_t>&, double);
PW_OPTIM_INSTANTIATE(float)
PW_OPTIM_INSTANTIATE(double)

}  // namespace pw
