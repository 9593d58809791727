#include "trainers/optim.h"

#include <cmath>
#include <map>

#include "autograd/dispatch.h"

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
  return it->second.to(like.dtype()).clone();
}
}  // namespace

void Optimizer::zero_grad() {
  for (Param& p : params) p.tensor.zero_grad();
}

AdamW::AdamW(std::vector<Param> ps, double b1, double b2, double eps, double wd)
    : beta1(b1), beta2(b2), eps(eps), weight_decay(wd) {
  params = std::move(ps);
  for (Param& p : params) {
    exp_avg.push_back(zeros(p.tensor.shape(), p.tensor.dtype()));
    exp_avg_sq.push_back(zeros(p.tensor.shape(), p.tensor.dtype()));
  }
  param_steps.assign(params.size(), 0);
}

void AdamW::step(double lr) {
  ++steps;
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    double t = (double)++param_steps[k];
    double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
    double wd = params[k].decay ? weight_decay : 0.0;
    for_each_float(params[k].tensor, "AdamW", [&](auto tag) {
      using T = decltype(tag);
      T* p = params[k].tensor.data<T>();
      const T* gp = g.data<T>();
      T* m = exp_avg[k].data<T>();
      T* v = exp_avg_sq[k].data<T>();
      int64_t n = params[k].tensor.numel();
      const T b1 = (T)beta1, b2 = (T)beta2, decay = (T)(1 - lr * wd), ss = (T)step_size, bs = (T)bc2_sqrt, e = (T)eps;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) {
        p[i] *= decay;  // decoupled weight decay, applied before the Adam step (as PyTorch)
        m[i] = b1 * m[i] + (1 - b1) * gp[i];
        v[i] = b2 * v[i] + (1 - b2) * gp[i] * gp[i];
        p[i] -= ss * m[i] / (std::sqrt(v[i]) / bs + e);
      }
    });
  }
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
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    double wd = params[k].decay ? weight_decay : 0.0;
    bool first = !momentum_buffer[k].defined();
    if (momentum != 0 && first) momentum_buffer[k] = zeros(g.shape(), g.dtype());
    for_each_float(params[k].tensor, "SGD", [&](auto tag) {
      using T = decltype(tag);
      T* p = params[k].tensor.data<T>();
      const T* gp = g.data<T>();
      T* buf = momentum != 0 ? momentum_buffer[k].data<T>() : nullptr;
      int64_t n = params[k].tensor.numel();
      const T mu = (T)momentum, w = (T)wd, l = (T)lr;
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) {
        T d = gp[i] + w * p[i];
        if (buf) {
          buf[i] = first ? d : mu * buf[i] + d;  // dampening 0; the first step copies (PyTorch)
          d = nesterov ? d + mu * buf[i] : buf[i];
        }
        p[i] -= l * d;
      }
    });
  }
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

Ema::Ema(const Module& m, double decay) : decay(decay) {
  for (auto& [n, t] : m.state_dict()) shadow.emplace_back(n, t.detach().clone());
}
void Ema::update(const Module& m) {
  auto sd = m.state_dict();
  PW_CHECK(sd.size() == shadow.size(), "Ema: the model changed its parameters");
  for (size_t k = 0; k < sd.size(); ++k) {
    Tensor& e = shadow[k].second;
    const Tensor& p = sd[k].second;
    if (p.dtype() == DType::I64) continue;
    for_each_float(p, "Ema", [&](auto tag) {
      using T = decltype(tag);
      T* ed = e.data<T>();
      const T* pd = p.data<T>();
      const T d = (T)decay;
      for (int64_t i = 0, n = p.numel(); i < n; ++i) ed[i] = d * ed[i] + (1 - d) * pd[i];
    });
  }
}

}  // namespace pw
