// The optimizer ops and their dispatch rows (forward-only: an update has no
// gradient). Device-agnostic; the kernels are in optim_cpu.cpp and optim_cuda.cu.
#include "kernels/optim/optim.h"

#include "autograd/op_table.h"

namespace pw {

namespace {

using AdamWStepFn = void(const std::vector<AdamWSlot>& ts, const AdamWArgs& a);
using SgdStepFn = void(const std::vector<SgdSlot>& ts, const SgdArgs& a);
using GlobalNormFn = void(Tensor& norm, const std::vector<Tensor>& xs);
using ClipToNormFn = void(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm);
using EmaUpdateFn = void(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay);
PW_OP_ROW_NOGRAD(kAdamWStep, "adamw_step", "optim", AdamWStepFn, adamw_step_cpu, PW_CUDA_KERNEL(adamw_step_cuda));
PW_OP_ROW_NOGRAD(kSgdStep, "sgd_step", "optim", SgdStepFn, sgd_step_cpu, PW_CUDA_KERNEL(sgd_step_cuda));
PW_OP_ROW_NOGRAD(kGlobalNorm, "global_norm", "optim", GlobalNormFn, global_norm_cpu, PW_CUDA_KERNEL(global_norm_cuda));
PW_OP_ROW_NOGRAD(kClipToNorm, "clip_to_norm", "optim", ClipToNormFn, clip_to_norm_cpu,
                 PW_CUDA_KERNEL(clip_to_norm_cuda));
PW_OP_ROW_NOGRAD(kEmaUpdate, "ema_update", "optim", EmaUpdateFn, ema_update_cpu, PW_CUDA_KERNEL(ema_update_cuda));

// The one device of xs (at least one); a tensor elsewhere is an error naming it.
Device device_of(const char* op, const std::vector<Tensor>& xs) {
  const Device d = xs[0].device();
  for (size_t k = 1; k < xs.size(); ++k)
    PW_CHECK(xs[k].device() == d, op, ": tensor ", k, " is on ", device_name(xs[k].device()), " but tensor 0 on ",
             device_name(d), "; one call updates tensors of one device");
  return d;
}

}  // namespace

void adamw_step(const std::vector<AdamWSlot>& ts, const AdamWArgs& a) {
  if (ts.empty()) return;
  std::vector<Tensor> ps;
  for (const AdamWSlot& s : ts) ps.push_back(s.p);
  kAdamWStep.fwd(device_of("adamw_step", ps))(ts, a);
}

void sgd_step(const std::vector<SgdSlot>& ts, const SgdArgs& a) {
  if (ts.empty()) return;
  std::vector<Tensor> ps;
  for (const SgdSlot& s : ts) ps.push_back(s.p);
  kSgdStep.fwd(device_of("sgd_step", ps))(ts, a);
}

Tensor global_norm(const std::vector<Tensor>& xs, Device device) {
  if (!xs.empty())
    PW_CHECK(device_of("global_norm", xs) == device, "global_norm: the tensors are on ", device_name(xs[0].device()),
             ", the norm was asked for on ", device_name(device));
  Tensor norm = empty({1}, DType::F64, device);
  kGlobalNorm.fwd(device)(norm, xs);
  return norm;
}

void clip_to_norm(const std::vector<Tensor>& xs, const Tensor& norm, double max_norm) {
  if (xs.empty()) return;
  const Device d = device_of("clip_to_norm", xs);
  PW_CHECK(norm.dtype() == DType::F64 && norm.numel() == 1 && norm.device() == d, "clip_to_norm: norm is ",
           norm.str(), ", expected a f64 (1) tensor on ", device_name(d), " (global_norm's)");
  kClipToNorm.fwd(d)(xs, norm, max_norm);
}

void ema_update(const std::vector<Tensor>& ema, const std::vector<Tensor>& xs, double decay) {
  PW_CHECK(ema.size() == xs.size(), "ema_update: ", ema.size(), " averages for ", xs.size(), " tensors");
  if (xs.empty()) return;
  const Device d = device_of("ema_update", xs);
  PW_CHECK(device_of("ema_update", ema) == d, "ema_update: the averages are on ", device_name(ema[0].device()),
           " but the tensors on ", device_name(d));
  kEmaUpdate.fwd(d)(ema, xs, decay);
}

}  // namespace pw
