// The CUDA runtime's entry points in a build without CUDA: nothing is
// available, and every use says how to get CUDA (runtime/cuda/runtime.h).
#include "runtime/cuda/runtime.h"

#if !defined(PW_HAVE_CUDA)
#include "runtime/check.h"

namespace pw::cuda {

namespace {
const char* kReason = "this patchwork library was built without CUDA (PW_CUDA=OFF or no nvcc found)";
[[noreturn]] void no_cuda(const char* what) {
  PW_FAIL(what, ": a CUDA tensor was requested but CUDA is not available: ", kReason,
          "; rebuild with -DPW_CUDA=ON on a machine with the CUDA toolkit, or keep tensors on the cpu");
}
}  // namespace

bool available() { return false; }
std::string unavailable_reason() { return kReason; }
void require(const char* what) { no_cuda(what); }
void* alloc(size_t) { no_cuda("cuda::alloc"); }
void free(void*, size_t) {}
MemStats mem_stats() { return {}; }
void reset_peak() {}
void empty_cache() {}
void set_alloc_poison(bool) {}
void copy_h2d(void*, const void*, size_t) { no_cuda("cuda::copy_h2d"); }
void copy_d2h(void*, const void*, size_t) { no_cuda("cuda::copy_d2h"); }
void copy_d2d(void*, const void*, size_t) { no_cuda("cuda::copy_d2d"); }
void memset_zero(void*, size_t) { no_cuda("cuda::memset_zero"); }
void* pinned_alloc(size_t) { no_cuda("cuda::pinned_alloc"); }
void pinned_free(void*) {}
void synchronize() { no_cuda("cuda::synchronize"); }
void* compute_stream() { no_cuda("cuda::compute_stream"); }

}  // namespace pw::cuda
#endif
