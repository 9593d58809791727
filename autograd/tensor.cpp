#include "autograd/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "autograd/philox.h"
#include "runtime/cuda/runtime.h"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::BF16: return 2;
    case DType::F16: return 2;
  }
  return 0;
}
const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
  }
  return "?";
}
const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}
std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << "]";
  return os.str();
}

namespace {
// Host blocks are cached by size and reused: a training step allocates the same
// sizes every iteration, and fresh large blocks from malloc are mmap'ed pages
// that fault on first touch, which costs more than most kernels here.
struct HostCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  size_t cached = 0;
  static constexpr size_t kLimit = size_t(4) << 30;  // bytes kept for reuse at most
  void* get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = free.find(bytes);
      if (it != free.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached -= bytes;
        return p;
      }
    }
    return std::aligned_alloc(64, bytes);
  }
  void put(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    if (bytes < 4096 || cached + bytes > kLimit) {  // small blocks: malloc's own bins do fine
      std::free(p);
      return;
    }
    free[bytes].push_back(p);
    cached += bytes;
  }
  ~HostCache() {
    for (auto& [b, v] : free)
      for (void* p : v) std::free(p);
  }
};
HostCache& host_cache() {
  static HostCache* c = new HostCache();  // never destroyed: tensors may outlive static teardown
  return *c;
}
size_t padded_bytes(size_t n) { return n ? (n + 63) / 64 * 64 : 64; }
}  // namespace

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  if (d == Device::CUDA) {  // throws a clear error without CUDA (built or present)
    data = cuda::alloc(n);
    return;
  }
  data = host_cache().get(padded_bytes(n));
  PW_CHECK(data != nullptr, "out of host memory allocating ", n, " bytes");
}
Storage::~Storage() {
  if (device == Device::CUDA) cuda::free(data, nbytes);
  else host_cache().put(data, padded_bytes(nbytes));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  PW_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", a.str(), " vs ", b.str());
}
void check_cpu(const char* op, const Tensor& a) {
  PW_CHECK(a.device() == Device::CPU, op, ": not yet on CUDA: ", op, " got a ", device_name(a.device()), " tensor ",
           a.str(), "; move it with .cpu() first");
}
void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  PW_CHECK(a.device() == b.device(), op, ": inputs on different devices, ", a.str(), " on ", device_name(a.device()),
           " and ", b.str(), " on ", device_name(b.device()), "; move one with .to(Device::",
           a.device() == Device::CUDA ? "CUDA" : "CPU", ") (or .cuda() / .cpu())");
}

// --- Tensor members ---

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  int64_t dd = d < 0 ? d + n : d;
  PW_CHECK(dd >= 0 && dd < n, "size(", d, ") out of range for a tensor of shape ", shape_str(shape()));
  return shape()[dd];
}
std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape());
}
void* Tensor::raw() const {
  return static_cast<char*>(impl().storage->data) + impl().offset * dtype_size(dtype());
}

Tensor& Tensor::requires_grad_(bool on) {
  PW_CHECK(!on || dtype() == DType::F32 || dtype() == DType::F64,
           "requires_grad_: only floating-point tensors can require grad, got ", str());
  PW_CHECK(is_leaf(), "requires_grad_: only leaves can change requires_grad (use detach())");
  impl().requires_grad = on;
  return *this;
}
Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
void Tensor::zero_grad() { impl().grad.reset(); }
void Tensor::set_grad(const Tensor& g) { impl().grad = g.defined() ? g.impl_ptr() : nullptr; }

Tensor Tensor::detach() const {
  auto p = std::make_shared<TensorImpl>();
  p->storage = impl().storage;
  p->offset = impl().offset;
  p->shape = impl().shape;
  p->dtype = impl().dtype;
  p->device = impl().device;
  return Tensor(p);
}

double Tensor::item() const {
  PW_CHECK(numel() == 1, "item() needs a one-element tensor, got ", str());
  return to_vector()[0];
}
std::vector<double> Tensor::to_vector() const {
  if (device() == Device::CUDA) return detach().to(Device::CPU).to_vector();
  int64_t n = numel();
  std::vector<double> v(n);
  switch (dtype()) {
    case DType::F32: { const float* p = data<float>(); for (int64_t i = 0; i < n; ++i) v[i] = p[i]; break; }
    case DType::F64: { const double* p = data<double>(); for (int64_t i = 0; i < n; ++i) v[i] = p[i]; break; }
    case DType::I64: { const int64_t* p = data<int64_t>(); for (int64_t i = 0; i < n; ++i) v[i] = (double)p[i]; break; }
    default: PW_FAIL("to_vector: unsupported dtype ", dtype_name(dtype()));
  }
  return v;
}
Tensor Tensor::clone() const {
  Tensor y = empty(shape(), dtype(), device());
  const size_t bytes = numel() * dtype_size(dtype());
  if (device() == Device::CUDA) cuda::copy_d2d(y.raw(), raw(), bytes);
  else std::memcpy(y.raw(), raw(), bytes);
  return y;
}

namespace {
template <class A, class B>
void convert(B* dst, const A* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = (B)src[i];
}
Tensor convert_to(const Tensor& x, DType t) {
  Tensor y = empty(x.shape(), t, x.device());
  int64_t n = x.numel();
  if (x.device() == Device::CUDA) {
    if constexpr (kHaveCuda) convert_cuda(y.raw(), t, x.raw(), x.dtype(), n);
    return y;
  }
  auto go = [&](auto* src) {
    switch (t) {
      case DType::F32: convert(y.data<float>(), src, n); break;
      case DType::F64: convert(y.data<double>(), src, n); break;
      case DType::I64: convert(y.data<int64_t>(), src, n); break;
      default: PW_FAIL("to(", dtype_name(t), "): unsupported target dtype");
    }
  };
  switch (x.dtype()) {
    case DType::F32: go(x.data<float>()); break;
    case DType::F64: go(x.data<double>()); break;
    case DType::I64: go(x.data<int64_t>()); break;
    default: PW_FAIL("to: unsupported source dtype ", dtype_name(x.dtype()));
  }
  return y;
}
// y = x.to(t).  Backward converts dy back to x's dtype.
struct ToFn final : Node {
  const char* name() const override { return "to"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    Tensor c = convert_to(dy, inputs[0].dtype);
    if (dy.device() == Device::CUDA) {
      g.give(0, c);  // c is fresh: it becomes the buffer or is added into it
      return;
    }
    Tensor& dx = g[0];
    dispatch_float(dx.dtype(), "to", [&](auto tag) {
      using T = decltype(tag);
      T* d = dx.data<T>();
      const T* s = c.data<T>();
      for (int64_t i = 0, n = dx.numel(); i < n; ++i) d[i] += s[i];
    });
  }
};
// y = x.to(device).  Backward copies dy back to x's device.
struct ToDeviceFn final : Node {
  const char* name() const override { return "to_device"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) g.give(0, dy.to(inputs[0].device));
  }
};
// y = x.reshape(s).  Shares storage; backward hands dy over, reshaped back
// (a view, no copy, when x's gradient buffer is still empty).
struct ReshapeFn final : Node {
  const char* name() const override { return "reshape"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) g.give(0, dy.reshape(inputs[0].shape));
  }
};
}  // namespace

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor y = convert_to(*this, t);
  if (t == DType::F32 || t == DType::F64) record<ToFn>(y, {*this});
  return y;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor y = empty(shape(), dtype(), d);
  const size_t bytes = numel() * dtype_size(dtype());
  if (d == Device::CUDA) cuda::copy_h2d(y.raw(), raw(), bytes);
  else cuda::copy_d2h(y.raw(), raw(), bytes);
  record<ToDeviceFn>(y, {*this});
  return y;
}

Tensor Tensor::reshape(const Shape& s) const {
  Shape out = s;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      PW_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(s));
      infer = (int64_t)i;
    } else {
      PW_CHECK(out[i] >= 0, "reshape: negative size in ", shape_str(s));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    PW_CHECK(known > 0 && numel() % known == 0, "reshape: cannot view ", str(), " as ", shape_str(s));
    out[infer] = numel() / known;
  }
  PW_CHECK(numel_of(out) == numel(), "reshape: cannot view ", str(), " (", numel(),
           " elements) as ", shape_str(s));
  auto p = std::make_shared<TensorImpl>();
  p->storage = impl().storage;
  p->offset = impl().offset;
  p->shape = out;
  p->dtype = dtype();
  p->device = device();
  Tensor y(p);
  record<ReshapeFn>(y, {*this});
  return y;
}

// --- creation ---

Tensor empty(const Shape& s, DType t, Device d) {
  for (int64_t x : s) PW_CHECK(x >= 0, "empty: negative size in shape ", shape_str(s));
  auto p = std::make_shared<TensorImpl>();
  p->storage = std::make_shared<Storage>(numel_of(s) * dtype_size(t), d);
  p->shape = s;
  p->dtype = t;
  p->device = d;
  return Tensor(p);
}
Tensor full(const Shape& s, double value, DType t, Device d) {
  Tensor y = empty(s, t, d);
  int64_t n = y.numel();
  if (d == Device::CUDA) {
    if constexpr (kHaveCuda) fill_cuda(y.raw(), t, value, n);
    return y;
  }
  switch (t) {
    case DType::F32: { float* p = y.data<float>(); for (int64_t i = 0; i < n; ++i) p[i] = (float)value; break; }
    case DType::F64: { double* p = y.data<double>(); for (int64_t i = 0; i < n; ++i) p[i] = value; break; }
    case DType::I64: { int64_t* p = y.data<int64_t>(); for (int64_t i = 0; i < n; ++i) p[i] = (int64_t)value; break; }
    default: PW_FAIL("full: unsupported dtype ", dtype_name(t));
  }
  return y;
}
Tensor zeros(const Shape& s, DType t, Device d) {
  Tensor y = empty(s, t, d);
  if (d == Device::CUDA) cuda::memset_zero(y.raw(), y.numel() * dtype_size(t));
  else std::memset(y.raw(), 0, y.numel() * dtype_size(t));
  return y;
}
Tensor ones(const Shape& s, DType t, Device d) { return full(s, 1.0, t, d); }
Tensor arange(double start, double end, double step, DType t) {
  PW_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, (int64_t)std::ceil((end - start) / step));
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + i * step;
  return from_vector(v, {n}, t);
}
Tensor from_vector(const std::vector<double>& v, const Shape& s, DType t) {
  PW_CHECK((int64_t)v.size() == numel_of(s), "from_vector: ", v.size(), " values for shape ", shape_str(s));
  Tensor y = empty(s, t);
  int64_t n = y.numel();
  switch (t) {
    case DType::F32: { float* p = y.data<float>(); for (int64_t i = 0; i < n; ++i) p[i] = (float)v[i]; break; }
    case DType::F64: { double* p = y.data<double>(); for (int64_t i = 0; i < n; ++i) p[i] = v[i]; break; }
    case DType::I64: { int64_t* p = y.data<int64_t>(); for (int64_t i = 0; i < n; ++i) p[i] = (int64_t)v[i]; break; }
    default: PW_FAIL("from_vector: unsupported dtype ", dtype_name(t));
  }
  return y;
}
Tensor from_vector_f(const std::vector<float>& v, const Shape& s) {
  PW_CHECK((int64_t)v.size() == numel_of(s), "from_vector_f: ", v.size(), " values for shape ", shape_str(s));
  Tensor y = empty(s, DType::F32);
  std::memcpy(y.raw(), v.data(), v.size() * sizeof(float));
  return y;
}
Tensor from_indices(const std::vector<int64_t>& v, const Shape& s) {
  PW_CHECK((int64_t)v.size() == numel_of(s), "from_indices: ", v.size(), " values for shape ", shape_str(s));
  Tensor y = empty(s, DType::I64);
  std::memcpy(y.raw(), v.data(), v.size() * sizeof(int64_t));
  return y;
}
Tensor empty_like(const Tensor& x) { return empty(x.shape(), x.dtype(), x.device()); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.dtype(), x.device()); }

// --- random numbers (autograd/philox.h) ---

namespace {
struct U4 { uint32_t v[4]; };
inline U4 philox(uint64_t key, uint64_t ctr) {
  U4 r;
  math::philox4x32(key, ctr, r.v);
  return r;
}
// 24 random bits -> [0,1) exactly representable in float.
inline double to_unit(uint32_t x) { return (x >> 8) * (1.0 / 16777216.0); }
// (0,1]: safe for log().
inline double to_unit_open(uint32_t x) { return ((x >> 8) + 1) * (1.0 / 16777216.0); }

template <class T, class F>
Tensor fill_random(const Shape& s, DType t, Generator* g, F&& f) {
  Generator& gen = g ? *g : default_generator();
  Tensor y = empty(s, t);
  int64_t n = y.numel();
  uint64_t base = reserve_counters(gen, n);
  uint64_t seed = gen.seed;
  T* p = y.data<T>();
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) p[i] = (T)f(philox(seed, base + i));
  return y;
}
template <class F>
Tensor random_tensor(const Shape& s, DType t, Generator* g, const char* op, F&& f) {
  Tensor y;
  dispatch_float(t, op, [&](auto tag) { y = fill_random<decltype(tag)>(s, t, g, f); });
  return y;
}
double normal_from(const U4& r) {
  const double two_pi = 6.283185307179586;
  return std::sqrt(-2.0 * std::log(to_unit_open(r.v[0]))) * std::cos(two_pi * to_unit(r.v[1]));
}
}  // namespace

Generator& default_generator() {
  static Generator g(0);
  return g;
}
void manual_seed(uint64_t seed) {
  default_generator().seed = seed;
  default_generator().offset = 0;
}
uint64_t reserve_counters(Generator& g, uint64_t n) {
  uint64_t base = g.offset;
  g.offset += n;
  return base;
}
float philox_uniform(uint64_t seed, uint64_t i) { return (float)to_unit(philox(seed, i).v[0]); }

Tensor uniform(const Shape& s, double lo, double hi, DType t, Generator* g, Device d) {
  return random_tensor(s, t, g, "uniform", [=](const U4& r) { return lo + (hi - lo) * to_unit(r.v[0]); }).to(d);
}
Tensor normal(const Shape& s, double mean, double std, DType t, Generator* g, Device d) {
  return random_tensor(s, t, g, "normal", [=](const U4& r) { return mean + std * normal_from(r); }).to(d);
}
Tensor trunc_normal(const Shape& s, double mean, double std, double lo, double hi, DType t, Generator* g,
                    Device d) {
  if (d != Device::CPU) return trunc_normal(s, mean, std, lo, hi, t, g, Device::CPU).to(d);
  PW_CHECK(std > 0 && lo < hi, "trunc_normal: need std > 0 and lo < hi");
  if ((mean - lo) / std >= 8 && (hi - mean) / std >= 8) {
    // NOTE: bounds 8+ std away are hit with probability < 1e-15 per draw; a plain
    // normal (clamped for safety) is then the same distribution and 50x cheaper.
    return random_tensor(s, t, g, "trunc_normal", [=](const U4& r) {
      return std::min(hi, std::max(lo, mean + std * normal_from(r)));
    });
  }
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  double a = cdf((lo - mean) / std), b = cdf((hi - mean) / std);
  return random_tensor(s, t, g, "trunc_normal", [=](const U4& r) {
    // Inverse CDF via erfinv-free bisection on the standard normal CDF; 40 steps give ~1e-12.
    double u = a + (b - a) * to_unit(r.v[0]);
    double x0 = (lo - mean) / std, x1 = (hi - mean) / std;
    x0 = std::max(x0, -40.0);
    x1 = std::min(x1, 40.0);
    for (int it = 0; it < 50; ++it) {
      double m = 0.5 * (x0 + x1);
      if (0.5 * (1.0 + std::erf(m / std::sqrt(2.0))) < u) x0 = m; else x1 = m;
    }
    return std::min(hi, std::max(lo, mean + std * 0.5 * (x0 + x1)));
  });
}

}  // namespace pw
