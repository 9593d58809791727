// CUDA launchers of dropout and drop_path. The masks come from the SAME Philox
// counters as on the CPU (dropout_math.h is PW_HD): element i takes word i%4 of
// Philox(seed, base + i/4), so a CUDA mask equals the CPU's bit for bit.
#pragma once
#include <cstdint>

namespace pw {

// y[i] (Accumulate: +=, else =) dropout_apply(v[i], keep(u_i), scale).   y, v: (n)
// Serves forward (v = x) and backward (y = dx, v = dy).
template <bool Accumulate, class T>
void dropout_apply_cuda(T* y, const T* v, int64_t n, uint64_t seed, uint64_t base, float p, T scale);
// y[b, i] (Accumulate: +=, else =) v[b, i] * factor[b].   y, v: (B, M)  factor: (B)
template <bool Accumulate, class T>
void drop_path_apply_cuda(T* y, const T* v, const T* factor, int64_t B, int64_t M);

}  // namespace pw
