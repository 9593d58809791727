// The CUDA runtime: device discovery, compute stream, caching allocator, copies.
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "runtime/cuda/common.cuh"

namespace pw::cuda {

namespace {

struct Device {
  bool ok = false;
  std::string reason;
  cudaStream_t stream = nullptr;
};

// Probed once: device count, device 0, and the compute stream.
Device& device() {
  static Device* d = [] {
    auto* r = new Device();  // never destroyed: tensors may outlive static teardown
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      r->reason = std::string("no usable CUDA driver/device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")";
      cudaGetLastError();
      return r;
    }
    if (n == 0) {
      r->reason = "no CUDA device found";
      return r;
    }
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
      r->reason = std::string("CUDA device 0 could not be initialised: ") + cudaGetErrorString(e);
      cudaGetLastError();
      return r;
    }
    r->ok = true;
    return r;
  }();
  return *d;
}

// Bins: 512 B minimum; above that, 4 bins per power of two (<= 25% waste).
size_t bin_size(size_t bytes) {
  if (bytes <= 512) return 512;
  size_t p = 512;
  while (p * 2 < bytes) p *= 2;  // p < bytes <= 2p
  const size_t q = p / 4;
  return (bytes + q - 1) / q * q;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // bin size -> cached blocks
  std::unordered_map<void*, size_t> live;                     // handed-out block -> bin size
  size_t current = 0, peak = 0, reserved = 0;
  bool poison = false;

  // cudaFree every cached block; mu must be held.
  void release_cached() {
    for (auto& [sz, v] : free_blocks) {
      for (void* p : v) {
        cudaFree(p);
        reserved -= sz;
      }
      v.clear();
    }
    free_blocks.clear();
  }
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed, as device()
  return *c;
}

std::string mib(size_t b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", (double)b / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

bool available() { return device().ok; }
std::string unavailable_reason() { return device().ok ? std::string() : device().reason; }
void require(const char* what) {
  PW_CHECK(available(), what, ": a CUDA tensor was requested but CUDA is not available: ",
           unavailable_reason(), "; keep the tensor on the cpu (Device::CPU) or run on a machine with a GPU");
}

void* alloc(size_t bytes) {
  require("cuda::alloc");
  const size_t sz = bin_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  void* p = nullptr;
  auto it = c.free_blocks.find(sz);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    cudaError_t e = cudaMalloc(&p, sz);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      c.release_cached();  // cudaFree synchronises the device: no cached block is still in use
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      PW_FAIL("CUDA out of memory allocating ", bytes, " bytes (", mib(sz), " bin): ", cudaGetErrorString(e),
              "; in use ", mib(c.current), ", peak ", mib(c.peak), ", reserved ", mib(c.reserved),
              "; use a smaller batch or model");
    }
    c.reserved += sz;
  }
  c.live[p] = sz;
  c.current += sz;
  if (c.current > c.peak) c.peak = c.current;
  if (c.poison) PW_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, sz, device().stream));
  return p;
}

void free(void* p, size_t) {
  if (!p) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.live.find(p);
  if (it == c.live.end()) return;  // not ours: never happens through Storage
  const size_t sz = it->second;
  c.live.erase(it);
  c.current -= sz;
  c.free_blocks[sz].push_back(p);
}

MemStats mem_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return MemStats{c.current, c.peak, c.reserved};
}
void reset_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak = c.current;
}
void empty_cache() {
  if (!available()) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.release_cached();
}
void set_alloc_poison(bool on) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.poison = on;
}

void copy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  // From pageable memory the driver stages src before returning, so src may be reused.
  PW_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
}
void copy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  PW_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  PW_CUDA_CHECK(cudaStreamSynchronize(stream()));
}
void copy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  PW_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}
void memset_zero(void* dst, size_t bytes) {
  if (bytes == 0) return;
  PW_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream()));
}
void* pinned_alloc(size_t bytes) {
  require("cuda::pinned_alloc");
  void* p = nullptr;
  PW_CUDA_CHECK(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault));
  return p;
}
void pinned_free(void* p) {
  if (p) cudaFreeHost(p);
}

void synchronize() {
  require("cuda::synchronize");
  PW_CUDA_CHECK(cudaStreamSynchronize(stream()));
}
void* compute_stream() {
  require("cuda::compute_stream");
  return device().stream;
}

}  // namespace pw::cuda
