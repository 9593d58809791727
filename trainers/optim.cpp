#include "trainers/optim.h"

#include <cmath>
#include <map>

#include "kernels/optim/optim.h"

namespace pw {

namespace {
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
// The gradients of the parameters that have one, in order.
std::vector<Tensor> grads_of(const std::vector<Param>& params) {
  std::vector<Tensor> gs;
  for (const Param& p : params) {
    Tensor g = p.tensor.grad();
    if (g.defined()) gs.push_back(g);
  }
  return gs;
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

// Every parameter with a gradient in one call (one launch on CUDA).
void AdamW::step(double lr) {
  ++steps;
  params_device(params, "AdamW");
  std::vector<AdamWSlot> ts;
  ts.reserve(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    check_state_device("AdamW", params[k], exp_avg[k]);
    check_state_device("AdamW", params[k], exp_avg_sq[k]);
    ts.push_back({params[k].tensor, g, exp_avg[k], exp_avg_sq[k], ++param_steps[k], params[k].decay});
  }
  adamw_step(ts, {lr, beta1, beta2, eps, weight_decay});
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
  params_device(params, "SGD");
  std::vector<SgdSlot> ts;
  ts.reserve(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor g = params[k].tensor.grad();
    if (!g.defined()) continue;
    bool first = !momentum_buffer[k].defined();
    if (momentum != 0 && first) momentum_buffer[k] = zeros(g.shape(), g.dtype(), g.device());
    if (momentum != 0) check_state_device("SGD", params[k], momentum_buffer[k]);
    ts.push_back({params[k].tensor, g, momentum != 0 ? momentum_buffer[k] : Tensor(), params[k].decay, first});
  }
  sgd_step(ts, {lr, momentum, weight_decay, nesterov});
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

Tensor grad_norm_tensor(const std::vector<Param>& params) {
  return global_norm(grads_of(params), params_device(params, "grad_norm"));
}

Tensor clip_grad_norm_tensor(const std::vector<Param>& params, double max_norm) {
  Tensor norm = grad_norm_tensor(params);
  clip_to_norm(grads_of(params), norm, max_norm);
  return norm;
}

double grad_norm(const std::vector<Param>& params) { return grad_norm_tensor(params).item(); }

double clip_grad_norm(const std::vector<Param>& params, double max_norm) {
  return clip_grad_norm_tensor(params, max_norm).item();
}

Ema::Ema(const Module& m, double decay) : decay(decay) {
  for (auto& [n, t] : m.state_dict()) shadow.emplace_back(n, t.detach().clone());
}

// Every float tensor of the state dict in one call (integer buffers, e.g. counters, are skipped).
void Ema::update(const Module& m) {
  auto sd = m.state_dict();
  PW_CHECK(sd.size() == shadow.size(), "Ema: the model changed its parameters");
  std::vector<Tensor> es, ps;
  es.reserve(sd.size());
  ps.reserve(sd.size());
  for (size_t k = 0; k < sd.size(); ++k) {
    const Tensor& e = shadow[k].second;
    const Tensor& p = sd[k].second;
    if (p.dtype() == DType::I64) continue;
    PW_CHECK(e.device() == p.device(), "Ema: '", sd[k].first, "' is on ", device_name(p.device()),
             " but its average on ", device_name(e.device()), "; create the Ema after Module::to");
    es.push_back(e);
    ps.push_back(p);
  }
  ema_update(es, ps, decay);
}

std::unique_ptr<Optimizer> make_optimizer(const OptimSpec& s, std::vector<Param> params) {
  if (s.kind == "adamw") return std::make_unique<AdamW>(std::move(params), s.beta1, s.beta2, s.eps, s.weight_decay);
  PW_CHECK(s.kind == "sgd", "make_optimizer: unknown optimizer '", s.kind, "' (adamw or sgd)");
  return std::make_unique<SGD>(std::move(params), s.momentum, s.weight_decay, s.nesterov);
}

}  // namespace pw
