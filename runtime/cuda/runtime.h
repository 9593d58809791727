// The CUDA runtime of patchwork, as plain C++ (no CUDA types): device
// discovery, the caching allocator, copies, memory statistics and sync.
//
// Everything runs on ONE compute stream (compute_stream()); kernels, copies and
// frees are ordered by it, so a block handed back to the cache may be reused by
// the next allocation at once (the stream runs the old user before the new one).
//
// In a build without CUDA (PW_CUDA=OFF) these functions exist too: available()
// is false and everything else throws pw::Error saying how to get CUDA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pw::cuda {

// Whether a CUDA device can be used (cached after the first call; never throws).
bool available();
// Why available() is false ("built without CUDA", "no CUDA device", the driver's
// error); empty when available.
std::string unavailable_reason();
// Throws pw::Error naming `what` and unavailable_reason() unless available().
void require(const char* what);

// --- caching allocator ---
// Sizes are rounded up to bins (512 B minimum, then 4 bins per power of two);
// freed blocks stay cached per bin and are handed out again, so a training step
// that repeats the same sizes calls cudaMalloc only in its first iteration. On
// out-of-memory the cache is emptied and the cudaMalloc retried once; if that
// fails too, a pw::Error names the size and the current/peak usage.
void* alloc(size_t bytes);
// Returns p (from alloc) to the cache. `bytes` is what was asked of alloc; the
// allocator trusts its own record. Never throws (called from destructors).
void free(void* p, size_t bytes);

struct MemStats {
  size_t current = 0;   // bytes in blocks handed out now (rounded sizes)
  size_t peak = 0;      // max of current since start or the last reset_peak()
  size_t reserved = 0;  // bytes held from cudaMalloc: in use + cached
};
MemStats mem_stats();
void reset_peak();
void empty_cache();  // cudaFree every cached (unused) block
// Test aid: while on, every block alloc hands out is first filled with 0xFF
// bytes (NaN in f32/f64), so a kernel that leaves an element unwritten fails
// a comparison instead of passing on stale data.
void set_alloc_poison(bool on);

// --- copies (on the compute stream) ---
void copy_h2d(void* dst, const void* src, size_t bytes);  // returns once src may be reused
void copy_d2h(void* dst, const void* src, size_t bytes);  // synchronous: dst is ready on return
void copy_d2d(void* dst, const void* src, size_t bytes);  // asynchronous
void memset_zero(void* dst, size_t bytes);                // asynchronous

// --- pinned (page-locked) host memory, for the input pipeline's staging buffers ---
// cudaHostAlloc'd, so an H2D cudaMemcpyAsync from it runs truly asynchronously.
// Not cached: allocate a few buffers once and reuse them.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);  // never throws (called from destructors)

void synchronize();        // waits for all work on the compute stream
void* compute_stream();    // the cudaStream_t, for C++ code (cuBLAS, cuDNN handles)

}  // namespace pw::cuda
