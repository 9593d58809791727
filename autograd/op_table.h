// The dispatch table: one row per op naming its forward and backward kernel on
// every device. An op is three pieces, each written once:
//
//   kernels/glu/glu_math.h     per-element math, templated on T, PW_HD (CPU and CUDA share it)
//   kernels/glu/glu_cpu.cpp    CPU kernels: compute only, no graph, no device test
//   kernels/glu/glu_cuda.cu    CUDA kernels: the same signatures
//   kernels/glu/glu.cpp        the public op and its autograd node (device-agnostic) and the row:
//
//     // y = glu(x).   x: (O, 2, HI), y: (O, HI)
//     using GluFwd = void(Tensor& y, const Tensor& x, int64_t O, int64_t HI);
//     using GluBwd = void(GradBuf dx, const Tensor& x, const Tensor& dy, int64_t O, int64_t HI);
//     PW_OP_ROW(kGlu, "glu", "activation", GluFwd, GluBwd,
//               glu_forward_cpu, PW_CUDA_KERNEL(glu_forward_cuda),
//               glu_backward_cpu, PW_CUDA_KERNEL(glu_backward_cuda));
//     ...
//     kGlu.fwd(x.device())(y, x, O, HI);            // in the op
//     kGlu.bwd(dy.device())(g.buf(0), x, dy, O, HI); // in the node's backward
//
// fwd()/bwd() fail loudly, naming the op and the device, where a backend has
// no kernel ("glu: no CUDA backward kernel; ..."), so a half-ported op is a
// clear error, never a silent CPU fallback or a crash. Every row registers
// itself in op_registry(); tests/test_ops.cpp fails when a registered op has no
// test row, so an op cannot land untested.
//
// Backward kernels of every backend keep one gradient-buffer contract: GradBuf
// (autograd/function.h), which the node gets from g.buf(i).
#pragma once
#include <string>
#include <vector>

#include "autograd/function.h"
#include "autograd/tensor.h"

namespace pw {

// The CUDA entry of a row: the kernel in a CUDA build, nullptr without one (its
// .cu file is not compiled, so the symbol does not exist).
#if defined(PW_HAVE_CUDA)
#define PW_CUDA_KERNEL(f) (&(f))
#else
#define PW_CUDA_KERNEL(f) nullptr
#endif

constexpr int kNumDevices = 2;  // Device::CPU, Device::CUDA

// What the registry knows of a row: for `patchwork ops`, docs and the test coverage check.
struct OpInfo {
  const char* name;    // the op's public name: "glu", "layer_norm"
  const char* family;  // its folder under kernels/
  bool fwd[kNumDevices];
  bool bwd[kNumDevices];  // a forward-only op (argmax, an optimizer step) has none
  bool has_backward;
};

// Every row of the table, in registration order.
const std::vector<const OpInfo*>& op_registry();
const OpInfo* find_op(const std::string& name);  // nullptr when no row has this name

namespace detail {
void register_op(const OpInfo* info);
[[noreturn]] void missing_kernel(const OpInfo& info, Device d, const char* pass);
}  // namespace detail

// A row. Fwd and Bwd are function types; Bwd = void for a forward-only op.
template <class Fwd, class Bwd = void>
struct OpRow {
  OpInfo info;
  Fwd* fwd_[kNumDevices];
  Bwd* bwd_[kNumDevices];

  OpRow(const char* name, const char* family, Fwd* cpu_fwd, Fwd* cuda_fwd, Bwd* cpu_bwd, Bwd* cuda_bwd)
      : info{name, family, {cpu_fwd != nullptr, cuda_fwd != nullptr}, {cpu_bwd != nullptr, cuda_bwd != nullptr}, true},
        fwd_{cpu_fwd, cuda_fwd},
        bwd_{cpu_bwd, cuda_bwd} {
    detail::register_op(&info);
  }
  // The forward kernel for device d; a pw::Error naming the op and device when it has none.
  Fwd& fwd(Device d) const {
    Fwd* f = fwd_[(int)d];
    if (!f) detail::missing_kernel(info, d, "forward");
    return *f;
  }
  Bwd& bwd(Device d) const {
    Bwd* f = bwd_[(int)d];
    if (!f) detail::missing_kernel(info, d, "backward");
    return *f;
  }
};

// A forward-only row (no gradient: argmax, one_hot, an optimizer update).
template <class Fwd>
struct OpRow<Fwd, void> {
  OpInfo info;
  Fwd* fwd_[kNumDevices];
  OpRow(const char* name, const char* family, Fwd* cpu_fwd, Fwd* cuda_fwd)
      : info{name, family, {cpu_fwd != nullptr, cuda_fwd != nullptr}, {false, false}, false}, fwd_{cpu_fwd, cuda_fwd} {
    detail::register_op(&info);
  }
  Fwd& fwd(Device d) const {
    Fwd* f = fwd_[(int)d];
    if (!f) detail::missing_kernel(info, d, "forward");
    return *f;
  }
};

// Declares a row with static storage: registered before main() runs (the
// executables link patchwork_lib whole, so no row is dropped by the linker).
#define PW_OP_ROW(var, name, family, Fwd, Bwd, cpu_fwd, cuda_fwd, cpu_bwd, cuda_bwd) \
  const ::pw::OpRow<Fwd, Bwd> var(name, family, cpu_fwd, cuda_fwd, cpu_bwd, cuda_bwd)
#define PW_OP_ROW_NOGRAD(var, name, family, Fwd, cpu_fwd, cuda_fwd) \
  const ::pw::OpRow<Fwd> var(name, family, cpu_fwd, cuda_fwd)

}  // namespace pw
