#include "data/device_loader.h"

#include <cstring>

#include "runtime/check.h"
#include "runtime/cuda/runtime.h"

#if defined(PW_HAVE_CUDA)
#include <cuda_runtime.h>
// common.cuh is CUDA-only (device code); this plain C++ file checks calls itself.
#define PW_DL_CHECK(call)                                                                              \
  do {                                                                                                 \
    cudaError_t pw_err_ = (call);                                                                      \
    if (pw_err_ != cudaSuccess)                                                                        \
      ::pw::detail::fail(__FILE__, __LINE__, "CUDA call ", #call, " failed: ", cudaGetErrorName(pw_err_), \
                         ": ", cudaGetErrorString(pw_err_));                                           \
  } while (0)
#endif

namespace pw {

#if defined(PW_HAVE_CUDA)
namespace {
cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }
cudaEvent_t as_event(void* e) { return static_cast<cudaEvent_t>(e); }
size_t bytes_of(const Tensor& t) { return t.defined() ? (size_t)t.numel() * dtype_size(t.dtype()) : 0; }
size_t align64(size_t n) { return (n + 63) / 64 * 64; }
// A device tensor shaped like host tensor h, reusing `have` when it already fits.
Tensor device_like(const Tensor& h, const Tensor& have) {
  if (!h.defined()) return Tensor();
  if (have.defined() && have.shape() == h.shape() && have.dtype() == h.dtype()) return have;
  return empty(h.shape(), h.dtype(), Device::CUDA);
}
}  // namespace
#endif

DeviceLoader::DeviceLoader(DataLoader& loader, Device device) : loader_(loader), device_(device) {
  if (device_ != Device::CUDA) return;
#if defined(PW_HAVE_CUDA)
  cuda::require("DeviceLoader");
  cudaStream_t s = nullptr;
  PW_DL_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  copy_stream_ = s;
  for (Slot& sl : slots_) {
    cudaEvent_t r = nullptr, f = nullptr;
    PW_DL_CHECK(cudaEventCreateWithFlags(&r, cudaEventDisableTiming));
    PW_DL_CHECK(cudaEventCreateWithFlags(&f, cudaEventDisableTiming));
    sl.ready = r;
    sl.free = f;
  }
#else
  cuda::require("DeviceLoader");  // throws: built without CUDA
#endif
}

DeviceLoader::~DeviceLoader() {
#if defined(PW_HAVE_CUDA)
  if (device_ != Device::CUDA || !copy_stream_) return;
  cudaStreamSynchronize(as_stream(copy_stream_));  // no copy may still read a pinned buffer
  for (Slot& sl : slots_) {
    // The compute stream must not read a slot's tensors before its copy ended.
    if (sl.filled) cudaStreamWaitEvent(as_stream(cuda::compute_stream()), as_event(sl.ready), 0);
    cuda::pinned_free(sl.pinned);
    cudaEventDestroy(as_event(sl.ready));
    cudaEventDestroy(as_event(sl.free));
  }
  cudaStreamDestroy(as_stream(copy_stream_));
#endif
}

void DeviceLoader::drop(int s) {
#if defined(PW_HAVE_CUDA)
  Slot& sl = slots_[s];
  // The slot's tensors may be freed to the (compute-stream ordered) cache
  // later: order the compute stream after the copy that writes them.
  if (sl.in_flight) PW_DL_CHECK(cudaStreamWaitEvent(as_stream(cuda::compute_stream()), as_event(sl.ready), 0));
  sl.filled = false;
#else
  (void)s;
#endif
}

void DeviceLoader::set_position(int64_t epoch, int64_t batch) {
  if (device_ == Device::CUDA)
    for (int s = 0; s < 2; ++s)
      if (slots_[s].filled) drop(s);
  primed_ = false;
  loader_.set_position(epoch, batch);
}

bool DeviceLoader::prefetch(int s) {
#if defined(PW_HAVE_CUDA)
  Batch h;
  if (!loader_.next(h)) return false;
  Slot& sl = slots_[s];
  cudaStream_t compute = as_stream(cuda::compute_stream()), copy = as_stream(copy_stream_);
  // 1. The pinned buffer's previous copy must be over before the host refills it.
  if (sl.in_flight) PW_DL_CHECK(cudaEventSynchronize(as_event(sl.ready)));
  sl.in_flight = false;
  const size_t bi = align64(bytes_of(h.images)), bl = align64(bytes_of(h.labels)), bt = bytes_of(h.soft_targets);
  if (bi + bl + bt > sl.pinned_bytes) {
    cuda::pinned_free(sl.pinned);
    sl.pinned = nullptr;
    sl.pinned_bytes = 0;
    sl.pinned = cuda::pinned_alloc(bi + bl + bt);
    sl.pinned_bytes = bi + bl + bt;
  }
  unsigned char* host = static_cast<unsigned char*>(sl.pinned);
  // NOTE: one host memcpy per batch (the loader builds into pageable tensors).
  std::memcpy(host, h.images.raw(), bytes_of(h.images));
  std::memcpy(host + bi, h.labels.raw(), bytes_of(h.labels));
  if (bt) std::memcpy(host + bi + bl, h.soft_targets.raw(), bt);
  // 2. Device tensors (reused while the shapes stay the same).
  Batch& d = sl.batch;
  d.images = device_like(h.images, d.images);
  d.labels = device_like(h.labels, d.labels);
  d.soft_targets = device_like(h.soft_targets, d.soft_targets);
  d.lengths = h.lengths;  // host tensors (Batch): small, read by the model and the loss
  d.targets = h.targets;
  d.target_lengths = h.target_lengths;
  d.epoch = h.epoch;
  d.index = h.index;
  // 3. The copy stream waits until the compute stream is done with this slot:
  // recorded now, after every op enqueued so far (the last step that read the
  // slot, and the frees of any block the allocator just handed out above).
  PW_DL_CHECK(cudaEventRecord(as_event(sl.free), compute));
  PW_DL_CHECK(cudaStreamWaitEvent(copy, as_event(sl.free), 0));
  PW_DL_CHECK(cudaMemcpyAsync(d.images.raw(), host, bytes_of(h.images), cudaMemcpyHostToDevice, copy));
  PW_DL_CHECK(cudaMemcpyAsync(d.labels.raw(), host + bi, bytes_of(h.labels), cudaMemcpyHostToDevice, copy));
  if (bt) PW_DL_CHECK(cudaMemcpyAsync(d.soft_targets.raw(), host + bi + bl, bt, cudaMemcpyHostToDevice, copy));
  PW_DL_CHECK(cudaEventRecord(as_event(sl.ready), copy));
  sl.in_flight = true;
  sl.filled = true;
  return true;
#else
  (void)s;
  return false;
#endif
}

bool DeviceLoader::next(Batch& out) {
  if (device_ != Device::CUDA) return loader_.next(out);
#if defined(PW_HAVE_CUDA)
  const int s = cur_ ^ 1;  // the slot batch k is (to be) in
  if (!primed_) next_ok_ = prefetch(s);  // first batch after set_position: nothing overlaps it
  primed_ = false;
  if (!next_ok_) return false;
  Slot& sl = slots_[s];
  // Compute work enqueued from here on reads batch k only after its copy.
  PW_DL_CHECK(cudaStreamWaitEvent(as_stream(cuda::compute_stream()), as_event(sl.ready), 0));
  sl.filled = false;
  out = sl.batch;
  cur_ = s;
  // Batch k+1 into the other slot (batch k-1's): it overlaps step k.
  next_ok_ = prefetch(s ^ 1);
  primed_ = true;
  return true;
#else
  return false;
#endif
}

}  // namespace pw
