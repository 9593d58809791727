#include "dist/reducer.h"

#include <algorithm>
#include <cstring>

#include "autograd/function.h"
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
  bucket_of_.resize(params_.size());
  offset_of_.resize(params_.size());
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    int64_t n = 0;
    for (size_t k : buckets_[bi]) {
      bucket_of_[k] = bi;
      offset_of_[k] = (size_t)n * 4;
      n += params_[k].tensor.numel();
    }
    flat_.push_back(empty({n}, DType::F32, params_[buckets_[bi][0]].tensor.device()));
  }
  for (size_t k = 0; k < params_.size(); ++k) index_[params_[k].tensor.impl_ptr().get()] = k;
  filled_.assign(params_.size(), 0);
  ready_.assign(buckets_.size(), 0);
  work_.resize(buckets_.size());
  for (auto& [n, t] : buffers_) buffer_bytes_ += t.numel() * (int64_t)dtype_size(t.dtype());
}

GradReducer::~GradReducer() {
  if (attached_) set_grad_ready_hook(nullptr);
}

void GradReducer::attach_overlap() {
  if (!pg_.overlaps() || attached_) return;
  PW_CHECK((int64_t)buckets_.size() <= ProcessGroup::kSlots, "dist.overlap: ", buckets_.size(),
           " gradient buckets exceed the ", ProcessGroup::kSlots, " the backend tells apart; raise dist.bucket_mb");
  GradReadyHook prev = set_grad_ready_hook([this](const Tensor& leaf) { on_grad_ready(leaf); });
  PW_CHECK(!prev, "dist.overlap: another gradient-ready hook is installed; one reducer at a time");
  attached_ = true;
}

void GradReducer::broadcast_parameters() {
  for (Param& p : params_) pg_.broadcast(p.tensor, 0);
  sync_buffers();
}

void GradReducer::sync_buffers() {
  for (auto& [n, t] : buffers_) pg_.broadcast(t, 0);
}

void GradReducer::fill(size_t k) {
  const Tensor& p = params_[k].tensor;
  Tensor& flat = flat_[bucket_of_[k]];
  char* dst = static_cast<char*>(flat.raw()) + offset_of_[k];
  const size_t bytes = (size_t)p.numel() * 4;
  Tensor g = p.grad();
  if (g.defined()) {
    PW_CHECK(g.dtype() == DType::F32 && g.numel() == p.numel(), "GradReducer: gradient of '", params_[k].name,
             "' is ", g.str(), " for a ", p.str(), " parameter");
    copy_bytes(flat.device(), dst, g.raw(), bytes);
  } else {
    zero_bytes(flat.device(), dst, bytes);
  }
}

void GradReducer::launch(size_t bi) {
  work_[bi] = pg_.allreduce_mean_async(flat_[bi], (int)bi);
}

// In the backward: parameter k's gradient is final (autograd/function.h).
void GradReducer::on_grad_ready(const Tensor& leaf) {
  auto it = index_.find(leaf.impl_ptr().get());
  if (it == index_.end()) return;  // not one of the model's parameters
  const size_t k = it->second, bi = bucket_of_[k];
  PW_CHECK(!filled_[k], "dist.overlap: the gradient of '", params_[k].name,
           "' became final twice before the optimizer step (two backward passes per step?); set dist.overlap: false");
  fill(k);
  filled_[k] = 1;
  if (++ready_[bi] == buckets_[bi].size()) {
    launch(bi);
    ++overlapped_;
  }
  for (auto& w : work_)  // progress for the buckets in flight (MPI moves data only inside MPI calls)
    if (w) w->test();
}

void GradReducer::sync_gradients() {
  // Buckets not started in the backward (no overlap, or a parameter without a gradient):
  // fill what is missing, start them, in bucket order.
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    if (work_[bi]) continue;
    for (size_t k : buckets_[bi])
      if (!filled_[k]) fill(k);
    launch(bi);
  }
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    work_[bi]->wait();
    work_[bi].reset();
    const Tensor& flat = flat_[bi];
    const Device d = flat.device();
    const char* base = static_cast<const char*>(flat.raw());
    for (size_t k : buckets_[bi]) {
      Tensor p = params_[k].tensor;
      Tensor g = p.grad();
      if (!g.defined()) {
        g = empty(p.shape(), DType::F32, d);
        p.set_grad(g);
      }
      copy_bytes(d, g.raw(), base + offset_of_[k], (size_t)p.numel() * 4);
    }
  }
  std::fill(filled_.begin(), filled_.end(), 0);
  std::fill(ready_.begin(), ready_.end(), 0);
}

}  // namespace pw::dist
