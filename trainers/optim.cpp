#include "trainers/optim.h"

#include <cmath>
#include <map>

#include "autograd/dispatch.h"
#include "runtime/cuda/runtime.h"
#include "kernels/optim/optim_math.h"
#if defined(PW_HAVE_CUDA)
#include "kernels/optim/optim_cuda.h"
#endif

namespace pw {

namespace {
// The optimizer math runs on float32 or float64 parameters alike.
template <class F>
void for_each_float(const Tensor& t, const char* op, F&& f) {
  dispatch_float(t.dtype(), op, [&](auto tag) { f(tag); });
}
std::map<std::string, Tensor> as_map(const std::vector<std::pair<std::string, Tensor>>& s) {
  return std::map<std::string, Tensor>(s.begin(), s.end());
}
Tensor find_state(const std::map<std::string, Tensor>& m, const std::string& key, const Tensor& like) {
  auto it = m.find(key);
  PW_CHECK(it != m.end(), "optimizer state: missing '", key, "' in the checkpoint");
  PW_CHECK(it->second.shape() == like.shape(), "optimizer state: '", key, "' has shape ",
           shape_str(it->second.shape()), " but the parameter has ", shape_str(like.shape()));
  return it->second.to(like.dtype()).to(like.device()).clone();
}

// The one device all of `params` live on; mixing devices is an error naming the first stray.
Device params_device(const std::vector<Param>& params, const char* op) {
  if (params.empty()) return Device::CPU;
  Device d = params[0].tensor.device();
  for (const Param& p : params)
    PW_CHECK(p.tensor.device() == d, op, ": parameter '", p.name, "' is on ", device_name(p.tensor.device()), " but '",
             params[0].name, "' is on ", device_name(d), "; move the whole model with Module::to");
  return d;
}
// A state tensor (moment, buffer) must sit with its parameter.
void check_state_device(const char* op, const Param& p, const Tensor& s) {
  PW_CHECK(s.device() == p.tensor.device(), op, ": the state of parameter '", p.name, "' is on ",
           device_name(s.device()), " but the parameter is on ", device_name(p.tensor.device()),
           "; build the optimizer after Module::to (or rebuild it)");
}
}  // namespace

void Optimizer::zero_grad() {
  for (Param& p : params) p.tensor.zero_grad();
}

AdamW::AdamW(std::vector<Param> ps, double b1, double b2, double eps, double wd)
    : beta1(b1), beta2(b2), eps(eps), weight_decay(wd) {
  params = std::move(ps);
  for (Param& p : params) {
    exp_avg.push_back(zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
    exp_avg_sq.push_back(zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
  }
  param_steps.assign(params.size(), 0);
}

void AdamW::step(double lr) {
  ++steps;
  if (params_device(params, "AdamW") == Device::CUDA) {
    if constexpr (kHaveCuda) {
      step_cuda(lr);
      return;
    }
  }
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    double t = (double)++param_steps[k];
    double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
    double wd = params[k].decay ? weight_decay : 0.0;
    check_state_device("AdamW", params[k], exp_avg[k]);
    for_each_float(params[k].tensor, "AdamW", [&](auto tag) {
      using T = decltype(tag);
      T* p = params[k].tensor.data<T>();
      const T* gp = g.data<T>();
      T* m = exp_avg[k].data<T>();
      T* v = exp_avg_sq[k].data<T>();
      int64_t n = params[k].tensor.numel();
      const T b1 = (T)beta1, b2 = (T)beta2, decay = (T)(1 - lr * wd), ss = (T)step_size, bs = (T)bc2_sqrt, e = (T)eps;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) math::adamw_update(p[i], m[i], v[i], gp[i], b1, b2, decay, ss, bs, e);
    });
  }
}

// Every parameter with a gradient in ONE launch (kernels/optim/optim_cuda.h).
void AdamW::step_cuda(double lr) {
#if defined(PW_HAVE_CUDA)
  std::vector<AdamWTensor<float>> ts;
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    const Tensor& p = params[k].tensor;
    PW_CHECK(p.dtype() == DType::F32, "AdamW: parameter '", params[k].name, "' is ", p.str(),
             "; the CUDA optimizer updates f32 parameters only");
    check_state_device("AdamW", params[k], exp_avg[k]);
    check_state_device("AdamW", params[k], exp_avg_sq[k]);
    ts.push_back({p.data<float>(), g.data<float>(), exp_avg[k].data<float>(), exp_avg_sq[k].data<float>(), p.numel(),
                  ++param_steps[k], params[k].decay ? 1 : 0});
  }
  adamw_step_cuda<float>(ts, lr, beta1, beta2, eps, weight_decay);
#else
  (void)lr;
  PW_FAIL("AdamW: CUDA parameters in a build without CUDA");
#endif
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> s;
  for (size_t k = 0; k < params.size(); ++k) {
    s.emplace_back("exp_avg." + params[k].name, exp_avg[k]);
    s.emplace_back("exp_avg_sq." + params[k].name, exp_avg_sq[k]);
    s.emplace_back("step." + params[k].name, from_indices({param_steps[k]}, {1}));
  }
  s.emplace_back("steps", from_indices({steps}, {1}));
  return s;
}
void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& s) {
  auto m = as_map(s);
  for (size_t k = 0; k < params.size(); ++k) {
    exp_avg[k] = find_state(m, "exp_avg." + params[k].name, params[k].tensor);
    exp_avg_sq[k] = find_state(m, "exp_avg_sq." + params[k].name, params[k].tensor);
  }
  PW_CHECK(m.count("steps"), "optimizer state: missing 'steps' in the checkpoint");
  steps = (int64_t)m.at("steps").item();
  for (size_t k = 0; k < params.size(); ++k) {
    auto it = m.find("step." + params[k].name);
    param_steps[k] = it != m.end() ? (int64_t)it->second.item() : steps;
  }
}

SGD::SGD(std::vector<Param> ps, double momentum, double wd, bool nesterov)
    : momentum(momentum), weight_decay(wd), nesterov(nesterov) {
  params = std::move(ps);
  momentum_buffer.resize(params.size());
}

void SGD::step(double lr) {
  ++steps;
  const bool on_cuda = params_device(params, "SGD") == Device::CUDA;
#if defined(PW_HAVE_CUDA)
  std::vector<SgdTensor<float>> ts;
#endif
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    double wd = params[k].decay ? weight_decay : 0.0;
    bool first = !momentum_buffer[k].defined();
    if (momentum != 0 && first) momentum_buffer[k] = zeros(g.shape(), g.dtype(), g.device());
    if (momentum != 0) check_state_device("SGD", params[k], momentum_buffer[k]);
    if (on_cuda) {
#if defined(PW_HAVE_CUDA)
      const Tensor& p = params[k].tensor;
      PW_CHECK(p.dtype() == DType::F32, "SGD: parameter '", params[k].name, "' is ", p.str(),
               "; the CUDA optimizer updates f32 parameters only");
      ts.push_back({p.data<float>(), g.data<float>(), momentum != 0 ? momentum_buffer[k].data<float>() : nullptr,
                    p.numel(), params[k].decay ? 1 : 0, first ? 1 : 0});
#endif
      continue;
    }
    for_each_float(params[k].tensor, "SGD", [&](auto tag) {
      using T = decltype(tag);
      T* p = params[k].tensor.data<T>();
      const T* gp = g.data<T>();
      T* buf = momentum != 0 ? momentum_buffer[k].data<T>() : nullptr;
      int64_t n = params[k].tensor.numel();
      const T mu = (T)momentum, w = (T)wd, l = (T)lr;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) math::sgd_update(p[i], buf ? buf + i : nullptr, gp[i], l, mu, w, nesterov, first);
    });
  }
#if defined(PW_HAVE_CUDA)
  if (on_cuda) sgd_step_cuda<float>(ts, lr, momentum, weight_decay, nesterov);  // all parameters, one launch
#endif
}

std::vector<std::pair<std::string, Tensor>> SGD::state() const {
  std::vector<std::pair<std::string, Tensor>> s;
  for (size_t k = 0; k < params.size(); ++k)
    if (momentum_buffer[k].defined()) s.emplace_back("momentum_buffer." + params[k].name, momentum_buffer[k]);
  s.emplace_back("steps", from_indices({steps}, {1}));
  return s;
}
void SGD::load_state(const std::vector<std::pair<std::string, Tensor>>& s) {
  auto m = as_map(s);
  for (size_t k = 0; k < params.size(); ++k) {
    std::string key = "momentum_buffer." + params[k].name;
    momentum_buffer[k] = m.count(key) ? find_state(m, key, params[k].tensor) : Tensor();
  }
  PW_CHECK(m.count("steps"), "optimizer state: missing 'steps' in the checkpoint");
  steps = (int64_t)m.at("steps").item();
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return base_lr * (double)(step + 1) / (double)warmup_steps;
  if (kind == "constant") return base_lr;
  if (kind == "step") return base_lr * std::pow(gamma, (double)((step - warmup_steps) / std::max<int64_t>(1, step_size)));
  // cosine from base_lr (end of warmup) down to min_lr at the last step
  double span = std::max<int64_t>(1, total_steps - warmup_steps);
  double t = std::min(1.0, (double)(step - warmup_steps) / span);
  return min_lr + 0.5 * (base_lr - min_lr) * (1 + std::cos(M_PI * t));
}

double grad_norm(const std::vector<Param>& params) {
  if (params_device(params, "grad_norm") == Device::CUDA) return grad_norm_tensor(params).item();
  double total = 0;
  for (const Param& p : params) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    for_each_float(g, "grad_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* d = g.data<T>();
      double s = 0;
      for (int64_t i = 0, n = g.numel(); i < n; ++i) s += (double)d[i] * d[i];
      total += s;
    });
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Param>& params, double max_norm) {
  if (params_device(params, "clip_grad_norm") == Device::CUDA) return clip_grad_norm_tensor(params, max_norm).item();
  double norm = grad_norm(params);
  double coef = max_norm / (norm + 1e-6);
  if (coef >= 1) return norm;
  for (const Param& p : params) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    for_each_float(g, "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      T* d = g.data<T>();
      for (int64_t i = 0, n = g.numel(); i < n; ++i) d[i] *= (T)coef;
    });
  }
  return norm;
}

namespace {
#if defined(PW_HAVE_CUDA)
// The f32 gradients of params (on CUDA), with their sizes.
void cuda_grads(const std::vector<Param>& params, const char* op, std::vector<float*>& gs, std::vector<int64_t>& ns) {
  for (const Param& p : params) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    PW_CHECK(g.dtype() == DType::F32, op, ": gradient of '", p.name, "' is ", g.str(), "; CUDA handles f32 only");
    PW_CHECK(g.device() == Device::CUDA, op, ": gradient of '", p.name, "' is on ", device_name(g.device()),
             " but its parameter is on cuda");
    gs.push_back(g.data<float>());
    ns.push_back(g.numel());
  }
}
#endif
}  // namespace

Tensor grad_norm_tensor(const std::vector<Param>& params) {
  if (params_device(params, "grad_norm") == Device::CPU) return full({1}, grad_norm(params), DType::F64);
#if defined(PW_HAVE_CUDA)
  std::vector<float*> gs;
  std::vector<int64_t> ns;
  cuda_grads(params, "grad_norm", gs, ns);
  Tensor norm = empty({1}, DType::F64, Device::CUDA);
  grad_norm_cuda<float>(norm.data<double>(), std::vector<const float*>(gs.begin(), gs.end()), ns);
  return norm;
#else
  PW_FAIL("grad_norm: CUDA parameters in a build without CUDA");
#endif
}

Tensor clip_grad_norm_tensor(const std::vector<Param>& params, double max_norm) {
  if (params_device(params, "clip_grad_norm") == Device::CPU)
    return full({1}, clip_grad_norm(params, max_norm), DType::F64);
#if defined(PW_HAVE_CUDA)
  Tensor norm = grad_norm_tensor(params);
  std::vector<float*> gs;
  std::vector<int64_t> ns;
  cuda_grads(params, "clip_grad_norm", gs, ns);
  clip_scale_cuda<float>(gs, ns, norm.data<double>(), max_norm);
  return norm;
#else
  (void)max_norm;
  PW_FAIL("clip_grad_norm: CUDA parameters in a build without CUDA");
#endif
}

Ema::Ema(const Module& m, double decay) : decay(decay) {
  for (auto& [n, t] : m.state_dict()) shadow.emplace_back(n, t.detach().clone());
}
void Ema::update(const Module& m) {
  auto sd = m.state_dict();
  PW_CHECK(sd.size() == shadow.size(), "Ema: the model changed its parameters");
#if defined(PW_HAVE_CUDA)
  std::vector<float*> es;
  std::vector<const float*> ps;
  std::vector<int64_t> ns;
#endif
  for (size_t k = 0; k < sd.size(); ++k) {
    Tensor& e = shadow[k].second;
    const Tensor& p = sd[k].second;
    if (p.dtype() == DType::I64) continue;
    PW_CHECK(e.device() == p.device(), "Ema: '", sd[k].first, "' is on ", device_name(p.device()),
             " but its average on ", device_name(e.device()), "; create the Ema after Module::to");
    if (p.device() == Device::CUDA) {
#if defined(PW_HAVE_CUDA)
      PW_CHECK(p.dtype() == DType::F32, "Ema: '", sd[k].first, "' is ", p.str(), "; CUDA averages f32 only");
      es.push_back(e.data<float>());
      ps.push_back(p.data<float>());
      ns.push_back(p.numel());
#endif
      continue;
    }
    for_each_float(p, "Ema", [&](auto tag) {
      using T = decltype(tag);
      T* ed = e.data<T>();
      const T* pd = p.data<T>();
      const T d = (T)decay;
      for (int64_t i = 0, n = p.numel(); i < n; ++i) ed[i] = math::ema_update(ed[i], pd[i], d);
    });
  }
#if defined(PW_HAVE_CUDA)
  if (!ns.empty()) ema_update_cuda<float>(es, ps, ns, decay);  // every tensor, one launch
#endif
}

}  // namespace pw
