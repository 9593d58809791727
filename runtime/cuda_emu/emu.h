// The CPU execution backend of patchwork's CUDA sources (PW_CUDA=EMU): CUDA's
// keywords, built-ins, vector types, barriers, warp collectives and atomics for
// the host. Included first (-include) into every .cu that cu2cpp.py translated
// to C++, and by the stand-in CUDA headers (runtime/cuda_emu/include/).
//
// Execution model (emu_runtime.cpp): a launch runs its blocks on a pool of OS
// threads; each CUDA thread of a block is a fiber (boost.context) that runs
// until it reaches __syncthreads, a warp collective (__shfl_*_sync,
// __ballot_sync, __syncwarp, wmma) or its end, so barrier-synchronised and
// warp-synchronous code computes what a GPU computes. Barrier divergence, a
// lane leaving before a warp collective that names it, and deadlocks are fatal
// errors naming the kernel, block and thread; so is a crash inside a kernel.
// docs/cuda.md says what this backend can and cannot check.
#pragma once
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#define PW_CUDA_EMU 1
#define __global__ __attribute__((noinline))
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
// Static __shared__ arrays: one per OS thread, and every block runs all of its
// threads on one OS thread, so the fibers of a block share it.
#define __shared__ thread_local
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
#define warpSize 32

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
#define EMU_VEC2(T, N, A)                                                 \
  struct alignas(A) N##2 {                                                \
    T x, y;                                                               \
  };                                                                      \
  inline N##2 make_##N##2(T x, T y) { return {x, y}; }
#define EMU_VEC4(T, N, A)                                                 \
  struct alignas(A) N##4 {                                                \
    T x, y, z, w;                                                         \
  };                                                                      \
  inline N##4 make_##N##4(T x, T y, T z, T w) { return {x, y, z, w}; }
EMU_VEC2(float, float, 8)
EMU_VEC4(float, float, 16)
EMU_VEC2(int, int, 8)
EMU_VEC4(int, int, 16)
EMU_VEC2(unsigned, uint, 8)
EMU_VEC4(unsigned, uint, 16)
EMU_VEC2(double, double, 16)
#undef EMU_VEC2
#undef EMU_VEC4
struct float3 {
  float x, y, z;
};
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }

typedef struct emu_stream* cudaStream_t;

namespace emu {

struct Block {
  uint3 bid;
  dim3 bdim, gdim;
};
struct Thread {
  uint3 tid;
  Block* block;
  int lane, warp, linear;
};
// The CUDA thread running on this OS thread (null outside a kernel).
inline thread_local Thread* cur = nullptr;

[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// A block-wide barrier; file:line names the __syncthreads, so that threads of
// one block waiting at two different barriers are reported as divergence.
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask);
void* dynamic_smem();
// The order the fibers of a block are resumed in (also EMU_SCHED): "fwd", "rev" or
// "rand" passes over the runnable threads; "lo" / "hi": always the lowest- /
// highest-numbered runnable thread next (one warp runs as far ahead as it can).
void set_schedule(const char* order);
// A warp-wide rendezvous of the lanes in `mask`: each passes 8 bytes; returns
// the 32 slots (valid for lanes in mask) until this lane's next collective.
const uint64_t* warp_collect(unsigned mask, uint64_t v);

struct LaunchCfg {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  LaunchCfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = nullptr) : grid(g), block(b), smem(s), stream(st) {}
};
// Counts a kernel launch or library call by name for EMU_KERNEL_LOG (see emu_runtime.cpp).
void log_call(const char* name);
void launch_erased(const LaunchCfg& cfg, const void* kernel, const char* name, void (*call)(void*), void* obj);
// K<<<cfg>>>(args) after cu2cpp.py: runs body() as every thread of every block.
template <class F>
void launch(const LaunchCfg& cfg, const void* kernel, const char* name, F&& body) {
  launch_erased(cfg, kernel, name, [](void* o) { (*static_cast<std::remove_reference_t<F>*>(o))(); },
                (void*)&body);
}

template <class T>
T shfl_impl(unsigned mask, T v, int src) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shfl of a type wider than 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  const uint64_t* slots = warp_collect(mask, bits);
  if (src < 0 || src >= 32 || !(mask >> src & 1u))
    fatal("__shfl_*_sync reads lane %d, which is not in the mask 0x%08x", src, mask);
  T r;
  bits = slots[src];
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

// Atomics: blocks run on several OS threads, so these are real atomic operations.
template <class T, class Op>
T atomic_rmw(T* p, Op op) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomics on 4- or 8-byte words");
  using W = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  W* w = reinterpret_cast<W*>(p);
  W old = __atomic_load_n(w, __ATOMIC_RELAXED);
  for (;;) {
    T o;
    std::memcpy(&o, &old, sizeof(T));
    const T n = op(o);
    W nw;
    std::memcpy(&nw, &n, sizeof(T));
    if (__atomic_compare_exchange_n(w, &old, nw, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return o;
  }
}

}  // namespace emu

#define threadIdx (::emu::cur->tid)
#define blockIdx (::emu::cur->block->bid)
#define blockDim (::emu::cur->block->bdim)
#define gridDim (::emu::cur->block->gdim)

#define __syncthreads() ::emu::syncthreads(__FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::syncwarp(mask); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int lane = emu::cur->lane;
  return emu::shfl_impl(mask, v, (lane & ~(width - 1)) | ((lane ^ lane_mask) & (width - 1)));
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = emu::cur->lane;
  return emu::shfl_impl(mask, v, (lane & ~(width - 1)) | (src & (width - 1)));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = emu::cur->lane, base = lane & ~(width - 1);
  const int s = (lane - base) + (int)delta;
  return emu::shfl_impl(mask, v, s < width ? base + s : lane);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = emu::cur->lane, base = lane & ~(width - 1);
  const int s = (lane - base) - (int)delta;
  return emu::shfl_impl(mask, v, s >= 0 ? base + s : lane);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  const uint64_t* s = emu::warp_collect(mask, pred != 0);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && s[l]) r |= 1u << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz((unsigned)v); }
template <class T>
T __ldg(const T* p) {
  return *p;
}

#define EMU_ATOMICS(T)                                                                                     \
  inline T atomicAdd(T* p, T v) { return emu::atomic_rmw(p, [v](T o) { return (T)(o + v); }); }           \
  inline T atomicSub(T* p, T v) { return emu::atomic_rmw(p, [v](T o) { return (T)(o - v); }); }           \
  inline T atomicExch(T* p, T v) { return emu::atomic_rmw(p, [v](T) { return v; }); }                     \
  inline T atomicMax(T* p, T v) { return emu::atomic_rmw(p, [v](T o) { return o < v ? v : o; }); }        \
  inline T atomicMin(T* p, T v) { return emu::atomic_rmw(p, [v](T o) { return v < o ? v : o; }); }        \
  inline T atomicCAS(T* p, T cmp, T v) { return emu::atomic_rmw(p, [cmp, v](T o) { return o == cmp ? v : o; }); }
EMU_ATOMICS(int)
EMU_ATOMICS(unsigned)
EMU_ATOMICS(unsigned long long)
#undef EMU_ATOMICS
inline float atomicAdd(float* p, float v) { return emu::atomic_rmw(p, [v](float o) { return o + v; }); }
inline double atomicAdd(double* p, double v) { return emu::atomic_rmw(p, [v](double o) { return o + v; }); }
inline float atomicExch(float* p, float v) { return emu::atomic_rmw(p, [v](float) { return v; }); }

// Round-to-nearest adds/multiplies that the compiler must not contract into an FMA.
inline float __fadd_rn(float a, float b) {
  asm("" : "+x"(a));
  return a + b;
}
inline double __dadd_rn(double a, double b) {
  asm("" : "+x"(a));
  return a + b;
}
inline float __fmul_rn(float a, float b) {
  float r = a * b;
  asm("" : "+x"(r));
  return r;
}
inline double __dmul_rn(double a, double b) {
  double r = a * b;
  asm("" : "+x"(r));
  return r;
}
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
// NOTE: the GPU's fast intrinsics (__expf: ex2.approx, 2 ulp) are computed exactly here.
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.f / x; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : x > 1.f ? 1.f : x; }
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }

// Bit casts and the global min/max overloads of CUDA's device math.
inline double __longlong_as_double(long long v) {
  double d;
  std::memcpy(&d, &v, 8);
  return d;
}
inline long long __double_as_longlong(double v) {
  long long d;
  std::memcpy(&d, &v, 8);
  return d;
}
inline float __int_as_float(int v) {
  float d;
  std::memcpy(&d, &v, 4);
  return d;
}
inline int __float_as_int(float v) {
  int d;
  std::memcpy(&d, &v, 4);
  return d;
}
inline float __uint_as_float(unsigned v) {
  float d;
  std::memcpy(&d, &v, 4);
  return d;
}
inline unsigned __float_as_uint(float v) {
  unsigned d;
  std::memcpy(&d, &v, 4);
  return d;
}
#define EMU_MINMAX(T)                              \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
EMU_MINMAX(int)
EMU_MINMAX(unsigned)
EMU_MINMAX(long)
EMU_MINMAX(unsigned long)
EMU_MINMAX(long long)
EMU_MINMAX(unsigned long long)
#undef EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
