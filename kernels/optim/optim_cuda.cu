// CUDA kernels of the optimizer family (optim_kernels.h), multi-tensor: every
// launch covers all tensors of a call. The work is cut into fixed chunks of
// kChunk elements, one block per chunk, and a small device table says which
// tensor and range each block updates. The table is uploaded per call and freed
// in stream order, so the tensors may change from call to call (gradients do).
// All run on cuda::stream() and never synchronise. CPU reference: optim_cpu.cpp.
#include <algorithm>
#include <cstring>
#include <memory>

#include "autograd/dispatch.h"
#include "autograd/tensor.h"
#include "kernels/optim/optim_kernels.h"
#include "kernels/optim/optim_math.h"
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

// One parameter of an AdamW launch. p, g, m, v: (n) on the device.
template <class T>
struct AdamWTensor {
  T* p;          // (n) parameter, updated in place
  const T* g;    // (n) gradient
  T* m;          // (n) exp_avg
  T* v;          // (n) exp_avg_sq
  int64_t n;
  int64_t step;  // this parameter's step count AFTER this step (>= 1): bias correction
  int32_t decay; // 1: apply weight decay, 0: not (norms, biases, tokens)
};

// One parameter of an SGD launch. p, g, buf: (n); buf null without momentum.
template <class T>
struct SgdTensor {
  T* p;
  const T* g;
  T* buf;        // momentum buffer or nullptr
  int64_t n;
  int32_t decay; // 1: apply weight decay
  int32_t first; // 1: the buffer's first step (it becomes a copy of the update)
};

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

// Every tensor of a call is on CUDA and has the first one's dtype and `n` elements.
void check_cuda(const char* op, size_t k, const Tensor& x, DType dtype, int64_t n) {
  PW_CHECK(x.defined() && x.device() == Device::CUDA && x.dtype() == dtype && x.numel() == n, op,
           " (CUDA): tensor ", k, " is ", x.defined() ? x.str() : std::string("undefined"), ", expected ",
           dtype_name(dtype), " with ", n, " elements on cuda");
}

template <class T>
void adamw_launch(const std::vector<AdamWSlot>& ts, const AdamWArgs& a) {
  std::vector<AdamWTensor<T>> es;
  std::vector<int64_t> sizes;
  const DType dt = ts[0].p.dtype();
  for (size_t k = 0; k < ts.size(); ++k) {
    const AdamWSlot& s = ts[k];
    const int64_t n = s.p.numel();
    check_cuda("adamw_step", k, s.p, dt, n);
    check_cuda("adamw_step", k, s.g, dt, n);
    check_cuda("adamw_step", k, s.m, dt, n);
    check_cuda("adamw_step", k, s.v, dt, n);
    es.push_back({s.p.data<T>(), s.g.data<T>(), s.m.data<T>(), s.v.data<T>(), n, s.step, s.decay ? 1 : 0});
    sizes.push_back(n);
  }
  Table<AdamWTensor<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) return;
  adamw_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, a.lr, a.beta1,
                                                                               a.beta2, a.eps, a.weight_decay);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void sgd_launch(const std::vector<SgdSlot>& ts, const SgdArgs& a) {
  std::vector<SgdTensor<T>> es;
  std::vector<int64_t> sizes;
  const DType dt = ts[0].p.dtype();
  for (size_t k = 0; k < ts.size(); ++k) {
    const SgdSlot& s = ts[k];
    const int64_t n = s.p.numel();
    check_cuda("sgd_step", k, s.p, dt, n);
    check_cuda("sgd_step", k, s.g, dt, n);
    if (s.buf.defined()) check_cuda("sgd_step", k, s.buf, dt, n);
    es.push_back({s.p.data<T>(), s.g.data<T>(), s.buf.defined() ? s.buf.data<T>() : nullptr, n, s.decay ? 1 : 0,
                  s.first ? 1 : 0});
    sizes.push_back(n);
  }
  Table<SgdTensor<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) return;
  sgd_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, a.lr, a.momentum,
                                                                             a.weight_decay, a.nesterov);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void global_norm_launch(double* norm, const std::vector<Tensor>& xs) {
  std::vector<Pair<T>> es;
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < xs.size(); ++k) {
    check_cuda("global_norm", k, xs[k], xs[0].dtype(), xs[k].numel());
    es.push_back({nullptr, xs[k].data<T>(), xs[k].numel()});
    sizes.push_back(xs[k].numel());
  }
  Table<Pair<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) {  // nothing to sum: the norm is 0
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
void clip_launch(const std::vector<Tensor>& xs, const double* norm, double max_norm) {
  std::vector<Pair<T>> es;
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < xs.size(); ++k) {
    check_cuda("clip_to_norm", k, xs[k], xs[0].dtype(), xs[k].numel());
    es.push_back({xs[k].data<T>(), nullptr, xs[k].numel()});
    sizes.push_back(xs[k].numel());
  }
  Table<Pair<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) return;
  clip_scale_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, norm,
                                                                                  max_norm);
  PW_CUDA_LAUNCH_CHECK();
}

template <class T>
void ema_launch(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay) {
  std::vector<Pair<T>> es;
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < xs.size(); ++k) {
    check_cuda("ema_update", k, xs[k], xs[0].dtype(), xs[k].numel());
    check_cuda("ema_update", k, ema[k], xs[0].dtype(), xs[k].numel());
    es.push_back({ema[k].data<T>(), xs[k].data<T>(), xs[k].numel()});
    sizes.push_back(xs[k].numel());
  }
  Table<Pair<T>> tab = upload(es, sizes);
  if (tab.nchunks == 0) return;
  ema_kernel<T><<<(unsigned)tab.nchunks, cuda::kBlock, 0, cuda::stream()>>>(tab.entries, tab.chunks, decay);
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace

void adamw_step_cuda(const std::vector<AdamWSlot>& ts, const AdamWArgs& a) {
  if (ts.empty()) return;
  dispatch_float(ts[0].p.dtype(), "adamw_step (CUDA)", [&](auto tag) { adamw_launch<decltype(tag)>(ts, a); });
}

void sgd_step_cuda(const std::vector<SgdSlot>& ts, const SgdArgs& a) {
  if (ts.empty()) return;
  dispatch_float(ts[0].p.dtype(), "sgd_step (CUDA)", [&](auto tag) { sgd_launch<decltype(tag)>(ts, a); });
}

void global_norm_cuda(Tensor& norm, const std::vector<Tensor>& xs) {
  PW_CHECK(norm.device() == Device::CUDA && norm.dtype() == DType::F64 && norm.numel() == 1,
           "global_norm (CUDA): norm is ", norm.str(), ", expected a f64 (1) tensor on cuda");
  const DType dt = xs.empty() ? DType::F32 : xs[0].dtype();
  dispatch_float(dt, "global_norm (CUDA)", [&](auto tag) { global_norm_launch<decltype(tag)>(norm.data<double>(), xs); });
}

void clip_to_norm_cuda(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm) {
  if (xs.empty()) return;
  PW_CHECK(norm.device() == Device::CUDA && norm.dtype() == DType::F64 && norm.numel() == 1,
           "clip_to_norm (CUDA): norm is ", norm.str(), ", expected a f64 (1) tensor on cuda");
  dispatch_float(xs[0].dtype(), "clip_to_norm (CUDA)",
                 [&](auto tag) { clip_launch<decltype(tag)>(xs, norm.data<double>(), max_norm); });
}

void ema_update_cuda(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay) {
  if (xs.empty()) return;
  PW_CHECK(ema.size() == xs.size(), "ema_update (CUDA): ", ema.size(), " averages for ", xs.size(), " tensors");
  dispatch_float(xs[0].dtype(), "ema_update (CUDA)", [&](auto tag) { ema_launch<decltype(tag)>(ema, xs, decay); });
}

}  // namespace pw
