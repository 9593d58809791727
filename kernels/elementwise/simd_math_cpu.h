// Lets GCC vectorise std::exp, std::log, std::erf, std::tanh and std::pow in CPU
// loops marked `#pragma omp simd`, by declaring the SIMD variants that glibc's
// libmvec provides (>= 2.35 for erf and tanh). glibc's own <math.h> declares
// them only under -ffast-math, which patchwork does not use. libmvec keeps
// errors within 4 ulp; the scalar functions stay in use everywhere else.
//
// NOTE: a loop's vector body and its scalar tail may round differently in the
// last bit. Loops that use this must cut their work into blocks fixed by the
// element count (never by the thread count) so results stay thread-independent.
//
// CPU only (never included by .cu files); a no-op on other compilers and libcs.
#pragma once
#include <cmath>

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__x86_64__) && \
    defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define PW_SIMD_MATH 1
extern "C" {
#define PW_SIMD_DECL(ret, name, ...) __attribute__((simd("notinbranch"))) ret name(__VA_ARGS__) noexcept;
PW_SIMD_DECL(double, exp, double)
PW_SIMD_DECL(float, expf, float)
PW_SIMD_DECL(double, log, double)
PW_SIMD_DECL(float, logf, float)
PW_SIMD_DECL(double, erf, double)
PW_SIMD_DECL(float, erff, float)
PW_SIMD_DECL(double, tanh, double)
PW_SIMD_DECL(float, tanhf, float)
PW_SIMD_DECL(double, pow, double, double)
PW_SIMD_DECL(float, powf, float, float)
#undef PW_SIMD_DECL
}
#endif
