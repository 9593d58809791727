// CUDA launchers of the one-input elementwise ops (elementwise and activation
// families). Each op struct of unary_cpu.h names its kind (kKind) and its
// parameters (params()); the kernels call the same *_math.h formulas as the CPU.
#pragma once
#include <cstdint>

namespace pw {

enum class UnaryKind : int {
  AddS, MulS, DivS, RSubS, RDivS,                           // with a scalar a
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Pow, Clamp,               // pow: a = p; clamp: a = lo, b = hi
  Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh, Hardswish,      // activations
};
struct UnaryParams {
  double a = 0, b = 0;
};

// y[i] = fwd(x[i]).   y, x: (n)
template <class T> void unary_forward_cuda(UnaryKind k, UnaryParams p, T* y, const T* x, int64_t n);
// dx[i] += bwd(s[i], dy[i]) (overwrite: dx[i] = ...), s the saved x, or y for
// the ops whose backward reads the output (exp, sqrt, rsqrt, sigmoid, tanh).   dx, s, dy: (n)
template <class T>
void unary_backward_cuda(UnaryKind k, UnaryParams p, T* dx, const T* s, const T* dy, int64_t n, bool overwrite);

}  // namespace pw
