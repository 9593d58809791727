#include "dist/reducer.h"

#include <cstring>

#include "runtime/check.h"
#if defined(PW_HAVE_CUDA)
#include "runtime/cuda/runtime.h"
#endif

namespace pw::dist {

namespace {

// dst, src: device memory of `d`.
void copy_bytes(Device d, void* dst, const void* src, size_t bytes) {
  if (d == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if defined(PW_HAVE_CUDA)
  cuda::copy_d2d(dst, src, bytes);
#else
  PW_FAIL("GradReducer: tensors on ", device_name(d), " in a build without CUDA");
#endif
}
void zero_bytes(Device d, void* dst, size_t bytes) {
  if (d == Device::CPU) {
    std::memset(dst, 0, bytes);
    return;
  }
#if defined(PW_HAVE_CUDA)
  cuda::memset_zero(dst, bytes);
#else
  PW_FAIL("GradReducer: tensors on ", device_name(d), " in a build without CUDA");
#endif
}

}  // namespace

GradReducer::GradReducer(ProcessGroup& pg, const Module& model, double bucket_mb)
    : pg_(pg), params_(model.parameters()), buffers_(model.named_buffers()) {
  PW_CHECK(bucket_mb > 0, "dist.bucket_mb must be > 0, got ", bucket_mb);
  const int64_t cap = (int64_t)(bucket_mb * 1024 * 1024);
  std::vector<size_t> cur;
  int64_t cur_bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& t = params_[k].tensor;
    PW_CHECK(t.dtype() == DType::F32, "GradReducer: parameter '", params_[k].name, "' is ", t.str(),
             "; data-parallel training reduces f32 parameters");
    PW_CHECK(pg_.supports(t.device()), "parameter '", params_[k].name, "' is on ", device_name(t.device()),
             " but the process group's backend (", pg_.backend(), ") moves other tensors");
    const int64_t b = t.numel() * 4;
    param_bytes_ += b;
    if (!cur.empty() && cur_bytes + b > cap) {
      buckets_.push_back(cur);
      cur.clear();
      cur_bytes = 0;
    }
    cur.push_back(k);
    cur_bytes += b;
  }
  if (!cur.empty()) buckets_.push_back(cur);
  for (auto& bucket : buckets_) {
    int64_t n = 0;
    for (size_t k : bucket) n += params_[k].tensor.numel();
    flat_.push_back(empty({n}, DType::F32, params_[bucket[0]].tensor.device()));
  }
  for (auto& [n, t] : buffers_) buffer_bytes_ += t.numel() * (int64_t)dtype_size(t.dtype());
}

void GradReducer::broadcast_parameters() {
  for (Param& p : params_) pg_.broadcast(p.tensor, 0);
  sync_buffers();
}

void GradReducer::sync_buffers() {
  for (auto& [n, t] : buffers_) pg_.broadcast(t, 0);
}

void GradReducer::sync_gradients() {
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    Tensor& flat = flat_[bi];
    const Device d = flat.device();
    char* base = static_cast<char*>(flat.raw());
    size_t off = 0;
    for (size_t k : buckets_[bi]) {
      const Tensor& p = params_[k].tensor;
      const size_t bytes = (size_t)p.numel() * 4;
      Tensor g = p.grad();
      if (g.defined()) {
        PW_CHECK(g.dtype() == DType::F32 && g.numel() == p.numel(), "GradReducer: gradient of '", params_[k].name,
                 "' is ", g.str(), " for a ", p.str(), " parameter");
        copy_bytes(d, base + off, g.raw(), bytes);
      } else {
        zero_bytes(d, base + off, bytes);
      }
      off += bytes;
    }
    pg_.allreduce_mean(flat);
    off = 0;
    for (size_t k : buckets_[bi]) {
      Tensor p = params_[k].tensor;
      const size_t bytes = (size_t)p.numel() * 4;
      Tensor g = p.grad();
      if (!g.defined()) {
        g = empty(p.shape(), DType::F32, d);
        p.set_grad(g);
      }
      copy_bytes(d, g.raw(), base + off, bytes);
      off += bytes;
    }
  }
}

}  // namespace pw::dist
