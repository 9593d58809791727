// The backward engine: reverse topological order over the graph that ops
// recorded, gradients accumulated into zero-initialised buffers.
#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "runtime/cuda/tensor_cuda.h"

namespace pw {

namespace {
thread_local bool g_grad_enabled = true;
GradReadyHook g_grad_ready;
}
GradReadyHook set_grad_ready_hook(GradReadyHook hook) {
  GradReadyHook prev = std::move(g_grad_ready);
  g_grad_ready = std::move(hook);
  return prev;
}
bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }

bool any_requires_grad(std::initializer_list<const Tensor*> xs) {
  for (const Tensor* t : xs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void detail::attach(Tensor& out, const std::shared_ptr<Node>& n, const std::vector<const Tensor*>& inputs) {
  n->inputs.reserve(inputs.size());
  for (const Tensor* t : inputs) {
    Edge e;
    if (t->defined() && t->requires_grad()) {
      if (t->is_leaf()) e.leaf = t->impl_ptr();
      else e.fn = t->grad_fn();
      e.shape = t->shape();
      e.dtype = t->dtype();
      e.device = t->device();
    }
    n->inputs.push_back(std::move(e));
  }
  out.impl().grad_fn = n;
  out.impl().requires_grad = true;
}

void OpProfile::on_forward(std::shared_ptr<Node> n) {
  auto now = Clock::now();
  flush();
  pending_ = std::move(n);
  pending_s_ = std::chrono::duration<double>(now - last_).count();
  last_ = now;
}
void OpProfile::flush() {
  if (!pending_) return;
  Times& t = ops[pending_->name()];
  t.forward_s += pending_s_;
  ++t.forward_calls;
  pending_.reset();
}

Tensor& Grads::operator[](size_t i) {
  PW_CHECK(needs(i), node_.name(), ": backward asked for the gradient of input ", i,
           ", which does not require grad (guard with g.needs(i))");
  Tensor& b = *bufs_[i];
  const Edge& e = node_.inputs[i];
  if (!b.defined()) b = zeros(e.shape, e.dtype, e.device);  // on the input's device
  return b;
}

Tensor& Grads::out(size_t i, bool& fresh) {
  PW_CHECK(needs(i), node_.name(), ": backward asked for the gradient of input ", i,
           ", which does not require grad (guard with g.needs(i))");
  Tensor& b = *bufs_[i];
  fresh = !b.defined();
  const Edge& e = node_.inputs[i];
  if (fresh) b = empty(e.shape, e.dtype, e.device);
  return b;
}

GradBuf Grads::buf(size_t i) {
  if (!needs(i)) return {};
  bool fresh = false;
  Tensor& b = out(i, fresh);
  return {&b, !fresh};
}

GradBuf& GradBuf::zero_if_fresh() {
  if (!t || accumulate) return *this;
  if (t->device() == Device::CUDA) {
    if constexpr (kHaveCuda) fill_cuda(t->raw(), t->dtype(), 0.0, t->numel());
  } else {
    std::memset(t->raw(), 0, (size_t)t->numel() * dtype_size(t->dtype()));
  }
  accumulate = true;
  return *this;
}

namespace {
void add_into(Tensor& dst, const Tensor& src);
}

void Grads::give(size_t i, const Tensor& t) {
  PW_CHECK(needs(i), node_.name(), ": backward gave a gradient for input ", i,
           ", which does not require grad (guard with g.needs(i))");
  const Edge& e = node_.inputs[i];
  PW_CHECK(t.shape() == e.shape && t.dtype() == e.dtype && t.device() == e.device, node_.name(),
           ": backward gave a gradient ", t.str(), " on ", device_name(t.device()), " for input ", i, " of shape ",
           shape_str(e.shape), ", dtype ", dtype_name(e.dtype), " on ", device_name(e.device));
  Tensor& b = *bufs_[i];
  if (!b.defined()) b = t.detach();
  else add_into(b, t);
}

namespace {
// Adds src into dst elementwise (same shape and dtype).
void add_into(Tensor& dst, const Tensor& src) {
  check_same_device("backward", dst, src);
  dispatch_float(dst.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    if (dst.device() == Device::CUDA) {
      if constexpr (kHaveCuda) axpy_cuda<T>(dst.data<T>(), src.data<T>(), 1.0, dst.numel());
      return;
    }
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    int64_t n = dst.numel();
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  });
}
}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  PW_CHECK(requires_grad(), "backward: tensor ", str(), " does not require grad (no input of the ",
           "computation had requires_grad set, or it ran under NoGrad)");
  Tensor seed;
  if (grad.defined()) {
    PW_CHECK(grad.shape() == shape(), "backward: gradient shape ", shape_str(grad.shape()),
             " does not match the tensor's shape ", shape_str(shape()));
    check_same_dtype("backward", *this, grad);
    check_same_device("backward", *this, grad);
    seed = grad.clone();
  } else {
    PW_CHECK(numel() == 1, "backward: a gradient must be given for non-scalar output ", str(),
             " (pass dL/dy, or reduce the output to one element first)");
    seed = ones(shape(), dtype(), device());
  }
  NoGrad no_grad;  // backward formulas are not themselves recorded

  if (is_leaf()) {  // backward on a leaf: its gradient is the seed itself
    Tensor g = this->grad();
    if (g.defined()) add_into(g, seed);
    else impl().grad = seed.impl_ptr();
    if (g_grad_ready) g_grad_ready(*this);
    return;
  }

  // Topological order by iterative DFS (deep graphs must not overflow the stack).
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{grad_fn().get(), 0}};
  seen.insert(grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      Node* child = node->inputs[next++].fn.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  std::reverse(order.begin(), order.end());  // root first

  // dL/d(output of node), and dL/d(leaf) summed over this whole pass. A leaf's
  // sum is added to its .grad once (PyTorch's AccumulateGrad), so a second identical
  // backward adds exactly the same values again: right after the last node of `order`
  // that uses the leaf (run or skipped), when the sum is final; then the
  // gradient-ready hook is told. (Each leaf's .grad gets the same single addition
  // whenever it happens, so the values do not depend on this timing.)
  std::unordered_map<Node*, Tensor> pending;
  std::unordered_map<TensorImpl*, std::pair<std::shared_ptr<TensorImpl>, Tensor>> leaf_sums;
  // For each position in `order`: the leaves whose last use is that node.
  std::vector<std::vector<TensorImpl*>> last_use(order.size());
  {
    std::unordered_map<TensorImpl*, size_t> last;
    for (size_t k = 0; k < order.size(); ++k)
      for (const Edge& e : order[k]->inputs)
        if (e.leaf) last[e.leaf.get()] = k;
    for (size_t k = 0; k < order.size(); ++k)
      for (const Edge& e : order[k]->inputs)
        if (e.leaf) {
          auto it = last.find(e.leaf.get());
          if (it != last.end() && it->second == k) {
            last_use[k].push_back(e.leaf.get());
            last.erase(it);  // once, even if this node uses the leaf twice
          }
        }
  }
  auto finish_leaves = [&](size_t k) {
    for (TensorImpl* raw : last_use[k]) {
      auto it = leaf_sums.find(raw);
      if (it == leaf_sums.end()) continue;
      auto& [leaf, sum] = it->second;
      if (sum.defined()) {
        if (leaf->grad) {
          Tensor acc(leaf->grad);
          add_into(acc, sum);
        } else {
          leaf->grad = sum.impl_ptr();
        }
        if (g_grad_ready) g_grad_ready(Tensor(leaf));
      }
      leaf_sums.erase(it);
    }
  };
  pending[grad_fn().get()] = seed;
  for (size_t k = 0; k < order.size(); ++k) {
    Node* node = order[k];
    auto it = pending.find(node);
    if (it == pending.end()) {  // no gradient reached this node
      finish_leaves(k);
      continue;
    }
    if (!it->second.defined()) {  // a consumer asked for the buffer but wrote nothing
      pending.erase(it);
      finish_leaves(k);
      continue;
    }
    PW_CHECK(!node->freed, "backward: trying to run backward through the graph a second time (op '",
             node->name(), "'); its saved tensors were freed. Pass retain_graph=true to the first backward.");
    Tensor dy = it->second;
    pending.erase(it);
    std::vector<Tensor*> bufs(node->inputs.size(), nullptr);
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      Edge& e = node->inputs[i];
      if (e.fn) {
        bufs[i] = &pending[e.fn.get()];
      } else if (e.leaf) {
        auto& slot = leaf_sums[e.leaf.get()];
        slot.first = e.leaf;
        bufs[i] = &slot.second;
      }
    }
    Grads g(*node, bufs);
    if (OpProfile* prof = OpProfile::current()) {
      auto t0 = OpProfile::Clock::now();
      node->backward(dy, g);
      prof->on_backward(node->name(), t0);
    } else {
      node->backward(dy, g);
    }
    if (!retain_graph) {
      node->freed = true;
      node->release();
    }
    finish_leaves(k);
  }
  PW_CHECK(leaf_sums.empty(), "backward: ", leaf_sums.size(), " leaf gradient(s) were not finalised (engine bug)");
}

}  // namespace pw
