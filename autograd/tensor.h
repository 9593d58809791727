// Tensor: a shared, reference-counted, contiguous row-major array with an
// optional autograd history.
//
// Storage is 64-byte aligned and shared between a tensor and its views
// (reshape, detach). Every kernel in patchwork reads and writes contiguous
// memory; ops that change the memory order (permute, slice, ...) copy.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/check.h"
#include "runtime/dtype.h"

namespace pw {

using Shape = std::vector<int64_t>;
int64_t numel_of(const Shape& s);
std::string shape_str(const Shape& s);

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };

// A block of memory on one device. Freed when the last tensor using it dies.
// CUDA blocks come from the caching allocator (runtime/cuda/runtime.h).
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device = Device::CPU;
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;          // in elements: views of a split share storage
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves and for tensors without history
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return (int64_t)impl().shape.size(); }
  int64_t size(int64_t d) const;  // d may be negative
  int64_t numel() const { return numel_of(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  std::string str() const;  // "f32[2,3]"

  // Typed pointer to the first element; checks the dtype.
  template <class T> T* data() const {
    PW_CHECK(dtype() == dtype_of<T>::value, "Tensor::data<", dtype_name(dtype_of<T>::value),
             ">() called on a ", str(), " tensor");
    return static_cast<T*>(raw());
  }
  void* raw() const;

  // --- autograd ---
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const;       // undefined until a backward reaches this leaf
  void zero_grad();          // drops the accumulated gradient
  void set_grad(const Tensor& g);
  // Runs reverse-mode autograd from this tensor. `grad` is dL/d(this); it may be
  // omitted only for a one-element tensor. Gradients add into leaves.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;     // same storage, no history

  // --- values ---
  double item() const;                 // one-element tensors only (a CUDA tensor syncs)
  std::vector<double> to_vector() const;  // any dtype, as double; a CUDA tensor is copied to the host
  Tensor clone() const;                // a copy with no history
  Tensor to(DType t) const;            // a converted copy (differentiable between F32/F64)
  // A copy on device d (this tensor itself when already there); differentiable:
  // the gradient is copied back to this tensor's device. cuda() / cpu() are to(d).
  Tensor to(Device d) const;
  Tensor cuda() const { return to(Device::CUDA); }
  Tensor cpu() const { return to(Device::CPU); }
  Tensor reshape(const Shape& s) const;  // shares storage; one dim may be -1
  Tensor view(const Shape& s) const { return reshape(s); }

  TensorImpl& impl() const {
    PW_CHECK(impl_ != nullptr, "use of an undefined Tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// --- creation ---
Tensor empty(const Shape& s, DType t = DType::F32, Device d = Device::CPU);
Tensor zeros(const Shape& s, DType t = DType::F32, Device d = Device::CPU);
Tensor ones(const Shape& s, DType t = DType::F32, Device d = Device::CPU);
Tensor full(const Shape& s, double value, DType t = DType::F32, Device d = Device::CPU);
Tensor arange(double start, double end, double step = 1.0, DType t = DType::F32);
Tensor from_vector(const std::vector<double>& v, const Shape& s, DType t = DType::F32);
Tensor from_vector_f(const std::vector<float>& v, const Shape& s);
Tensor from_indices(const std::vector<int64_t>& v, const Shape& s);  // I64
Tensor empty_like(const Tensor& x);  // x's shape, dtype and device
Tensor zeros_like(const Tensor& x);

// --- random numbers ---
// Counter-based (Philox4x32-10): element i of a draw is a pure function of
// (seed, offset + i), so values never depend on the thread count, and the
// generator's whole state is two integers (saved in checkpoints).
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // advanced by the number of elements of each draw
  explicit Generator(uint64_t s = 0) : seed(s) {}
};
Generator& default_generator();
void manual_seed(uint64_t seed);  // reseeds the default generator

// Random tensors are drawn on the CPU (the same values on every device) and
// copied to d.
Tensor uniform(const Shape& s, double lo, double hi, DType t = DType::F32, Generator* g = nullptr,
               Device d = Device::CPU);
Tensor normal(const Shape& s, double mean, double std, DType t = DType::F32, Generator* g = nullptr,
              Device d = Device::CPU);
// Truncated normal on [lo, hi] (timm's trunc_normal_), by inverse CDF.
Tensor trunc_normal(const Shape& s, double mean, double std, double lo, double hi,
                    DType t = DType::F32, Generator* g = nullptr, Device d = Device::CPU);

// Raw Philox access for kernels that draw their own numbers (dropout, augmentations).
// Returns a float in [0,1) for counter `i` under `seed`.
float philox_uniform(uint64_t seed, uint64_t i);
// Reserves n counters from g and returns the first one.
uint64_t reserve_counters(Generator& g, uint64_t n);

}  // namespace pw
