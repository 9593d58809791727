// A FLOP counter for `patchwork info`: GEMM-backed kernels report 2*M*N*K
// while a FlopCount is alive on their thread. Costs one branch otherwise.
#pragma once
#include <cstdint>

namespace pw {

inline thread_local int64_t* g_flop_sink = nullptr;

inline void count_flops(int64_t n) {
  if (g_flop_sink) *g_flop_sink += n;
}

struct FlopCount {
  int64_t flops = 0;
  FlopCount() : prev_(g_flop_sink) { g_flop_sink = &flops; }
  ~FlopCount() {
    g_flop_sink = prev_;
    if (prev_) *prev_ += flops;
  }
  FlopCount(const FlopCount&) = delete;
  FlopCount& operator=(const FlopCount&) = delete;
 private:
  int64_t* prev_;
};

}  // namespace pw
