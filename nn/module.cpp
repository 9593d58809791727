#include "nn/module.h"

#include <cmath>
#include <cstring>

#include "autograd/function.h"
#include "autograd/profile.h"
#include "runtime/cuda/runtime.h"

namespace pw {

Tensor Module::forward(const Tensor&) {
  PW_FAIL(type_name(), " has no single-input forward");
}

namespace {
thread_local ModuleTrace* g_trace = nullptr;
thread_local int g_trace_depth = 0;
}  // namespace
ModuleTrace::ModuleTrace() { g_trace = this; }
ModuleTrace::~ModuleTrace() { g_trace = nullptr; }

namespace {
// Runs f() as module m's forward, recording it in the active ModuleTrace (if any).
template <class F>
Tensor traced(Module* m, F&& f) {
  if (!g_trace) return f();
  size_t slot = g_trace->entries.size();
  g_trace->entries.push_back({m, g_trace_depth, {}, 0});
  ++g_trace_depth;
  FlopCount fc;
  Tensor y = f();
  --g_trace_depth;
  g_trace->entries[slot].out = y.shape();
  g_trace->entries[slot].flops = fc.flops;
  return y;
}
}  // namespace

Tensor Module::operator()(const Tensor& x) {
  return traced(this, [&] { return forward(x); });
}

Tensor Module::operator()(const Tensor& x, const Tensor& lengths) {
  return traced(this, [&] { return forward_padded(x, lengths); });
}

Tensor Module::forward_padded(const Tensor& x, const Tensor& lengths) {
  PW_CHECK(!lengths.defined(), type_name(), " takes fixed-size input only, not padded variable-length batches "
                                           "(lengths); use a model that masks padding (conformer)");
  return forward(x);
}

Tensor Module::add_param(const std::string& name, Tensor t, bool decay) {
  PW_CHECK(t.is_leaf(), type_name(), ": parameter '", name, "' must be a leaf tensor");
  t.requires_grad_(true);
  params_.push_back({name, t, decay});
  return t;
}
Tensor Module::add_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

Tensor Module::add_constant(const std::string& name, Tensor t) {
  constants_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, std::vector<Param>& ps) const {
  for (const Entry& e : params_) ps.push_back({prefix + e.name, e.tensor, e.decay});
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", ps);
}
void Module::collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& bs) const {
  for (const auto& [n, t] : buffers_) bs.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect_buffers(prefix + n + ".", bs);
}
std::vector<Param> Module::parameters() const {
  std::vector<Param> ps;
  collect("", ps);
  return ps;
}
std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> bs;
  collect_buffers("", bs);
  return bs;
}
std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> sd;
  for (const Param& p : parameters()) sd.emplace_back(p.name, p.tensor);
  for (auto& b : named_buffers()) sd.push_back(b);
  return sd;
}
int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Param& p : parameters()) n += p.tensor.numel();
  return n;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict) {
  auto mine = state_dict();
  std::map<std::string, bool> used;
  for (auto& [name, t] : mine) {
    auto it = sd.find(name);
    if (it == sd.end()) {
      PW_CHECK(!strict, "load_state_dict: missing key '", name, "' (", t.str(), ") in the checkpoint");
      continue;
    }
    PW_CHECK(it->second.shape() == t.shape(), "load_state_dict: '", name, "' has shape ",
             shape_str(it->second.shape()), " in the checkpoint but ", shape_str(t.shape()),
             " in the model; the checkpoint was made for a different model config");
    copy_into(t, it->second);
    used[name] = true;
  }
  if (strict)
    for (auto& [name, t] : sd)
      PW_CHECK(used.count(name), "load_state_dict: unexpected key '", name, "' (", t.str(),
               ") in the checkpoint; the model has no such parameter or buffer");
}

Module& Module::to(Device d) {
  auto move = [d](const Tensor& t) {
    if (!t.defined() || t.device() == d) return;
    Tensor moved = t.detach().to(d);  // a fresh copy, no history
    TensorImpl& ti = t.impl();
    ti.storage = moved.impl().storage;
    ti.offset = moved.impl().offset;
    ti.device = d;
    ti.grad.reset();  // a gradient on the old device would mix devices in the next backward
  };
  for (const Param& p : parameters()) move(p.tensor);
  for (const auto& b : named_buffers()) move(b.second);
  std::vector<const Module*> todo{this};
  while (!todo.empty()) {
    const Module* m = todo.back();
    todo.pop_back();
    for (const auto& c : m->constants_) move(c.second);
    for (const auto& ch : m->children_) todo.push_back(ch.second.get());
  }
  return *this;
}
Device Module::device() const {
  for (const Param& p : parameters()) return p.tensor.device();
  for (const auto& b : named_buffers()) return b.second.device();
  return Device::CPU;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

// --- initialisers ---

namespace {
void fans(const Tensor& t, double& fan_in, double& fan_out) {
  PW_CHECK(t.dim() >= 2, "init: fan-based initialisers need a tensor with >= 2 dims, got ", t.str());
  double rf = 1;
  for (int64_t i = 2; i < t.dim(); ++i) rf *= (double)t.shape()[i];
  fan_in = t.shape()[1] * rf;
  fan_out = t.shape()[0] * rf;
}
}  // namespace

void copy_into(Tensor& dst, const Tensor& src) {
  PW_CHECK(dst.shape() == src.shape(), "copy_into: shape ", src.str(), " into ", dst.str());
  Tensor s = src.dtype() == dst.dtype() ? src : src.detach().to(dst.dtype());
  const size_t bytes = dst.numel() * dtype_size(dst.dtype());
  if (dst.device() == Device::CPU && s.device() == Device::CPU) {
    std::memcpy(dst.raw(), s.raw(), bytes);
  } else if (dst.device() == Device::CUDA && s.device() == Device::CPU) {
    cuda::copy_h2d(dst.raw(), s.raw(), bytes);
  } else if (dst.device() == Device::CPU) {
    cuda::copy_d2h(dst.raw(), s.raw(), bytes);  // synchronous
  } else {
    cuda::copy_d2d(dst.raw(), s.raw(), bytes);
  }
}
void init_uniform(Tensor& t, double lo, double hi, Generator* g) {
  copy_into(t, uniform(t.shape(), lo, hi, t.dtype(), g));
}
void init_trunc_normal(Tensor& t, double std, Generator* g) {
  // Exactly timm's trunc_normal_(std=s): the cut is at absolute +-2, not +-2 std.
  copy_into(t, trunc_normal(t.shape(), 0.0, std, -2.0, 2.0, t.dtype(), g));
}
void init_xavier_uniform(Tensor& t, Generator* g) {
  double fi, fo;
  fans(t, fi, fo);
  double a = std::sqrt(6.0 / (fi + fo));
  init_uniform(t, -a, a, g);
}
void init_kaiming_uniform(Tensor& t, double a, Generator* g) {
  double fi, fo;
  fans(t, fi, fo);
  double gain = std::sqrt(2.0 / (1 + a * a));
  double bound = gain * std::sqrt(3.0 / fi);
  init_uniform(t, -bound, bound, g);
}
void init_constant(Tensor& t, double v) { copy_into(t, full(t.shape(), v, t.dtype())); }

}  // namespace pw
