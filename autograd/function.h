// Reverse-mode autograd: the graph node every differentiable op derives from.
//
// Convention, kept by every op in patchwork: a backward adds its gradient into
// what other uses of the same input have already given. A node asks Grads for
// input i's buffer in one of three ways: g[i] (zero-filled on first use, +=),
// g.buf(i) (the kernel contract: write when fresh, add when not; GradBuf below)
// or g.give(i, t) (hand over a tensor it just made). So a tensor used twice
// (x*x), a broadcast input, and repeated backward calls into a leaf all add up
// without special cases.
//
// Writing an op: see autograd/op_table.h (the kernels, the dispatch row, the
// device-agnostic node) and docs/adding_an_op.md.
// Save an op's OUTPUT only as y.detach(): the output holds its node, so saving
// it with history would make a reference cycle.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "autograd/profile.h"
#include "autograd/tensor.h"

namespace pw {

// Where the gradient of one input goes: the node that produced it, or the leaf itself.
struct Edge {
  std::shared_ptr<Node> fn;            // producer of a non-leaf input
  std::shared_ptr<TensorImpl> leaf;    // a leaf that requires grad
  Shape shape;                         // the input's shape, for its gradient buffer
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool active() const { return fn || leaf; }
};

class Grads;

// One input's gradient buffer as a backward KERNEL sees it; the contract is the
// same on every device. Empty: that gradient is not needed. accumulate == false:
// the buffer is new and UNINITIALISED, and the kernel writes (=) every element;
// accumulate == true: it already holds the gradient from other uses of the
// input, and the kernel adds (+=). A kernel that can only add calls
// zero_if_fresh() first. Nodes get one from Grads::buf(i).
struct GradBuf {
  Tensor* t = nullptr;
  bool accumulate = true;
  explicit operator bool() const { return t != nullptr; }
  Tensor& operator*() const { return *t; }
  Tensor* operator->() const { return t; }
  // The buffer's data, or nullptr when the gradient is not needed.
  template <class T> T* data() const { return t ? t->data<T>() : nullptr; }
  // A fresh buffer is zero-filled on its device and becomes an accumulating one.
  GradBuf& zero_if_fresh();
};

struct Node {
  std::vector<Edge> inputs;
  bool freed = false;  // set after a backward without retain_graph
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // dy: gradient of the loss w.r.t. this node's output, same shape as the output.
  virtual void backward(const Tensor& dy, Grads& g) = 0;
  // Drops saved tensors after a backward without retain_graph. Ops that save
  // large buffers override it; the default keeps them until the graph dies.
  virtual void release() {}
};

// Gradient buffers for a node's inputs, created (zeroed) on first use.
class Grads {
 public:
  Grads(Node& node, std::vector<Tensor*> bufs) : node_(node), bufs_(std::move(bufs)) {}
  bool needs(size_t i) const { return i < bufs_.size() && bufs_[i] != nullptr; }
  Tensor& operator[](size_t i);  // dL/d(input i), to be accumulated into
  // The buffer of input i for a backward that can write instead of add. When
  // `fresh` comes back true the buffer is new and UNINITIALISED, and the op must
  // set every element (=); when false it already holds the gradient from other
  // uses of the input, and the op adds (+=) as always. Saves a zero fill and a read.
  Tensor& out(size_t i, bool& fresh);
  // Hands t over as dL/d(input i): t becomes the buffer when there is none yet
  // (no copy), else it is added into the buffer. t must have the input's shape and
  // dtype, and nothing may write to it afterwards: pass dy itself (the engine drops
  // it after this backward) or a tensor the op just made.
  void give(size_t i, const Tensor& t);
  // Input i's buffer for a backward kernel (GradBuf above): empty when input i
  // needs no gradient, else out(i, fresh) with accumulate = !fresh.
  GradBuf buf(size_t i);
 private:
  Node& node_;
  std::vector<Tensor*> bufs_;
};

// Grad mode. While a NoGrad is alive, ops record nothing.
bool grad_enabled();
struct NoGrad {
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;
 private:
  bool prev_;
};

bool any_requires_grad(std::initializer_list<const Tensor*> xs);

// Gradient-ready hook (PyTorch's post-accumulate-grad hooks, one for the process): during
// Tensor::backward, called once per leaf that received a gradient, as soon as that leaf's
// .grad is final for this backward, i.e. right after the last node that uses the leaf has
// run (a leaf used twice gets its gradient summed over both uses first). Leaves become
// final in the backward's order, so the data-parallel reducer (dist/reducer.h) starts
// reducing a bucket while the backward goes on. `leaf` is the parameter itself (its
// .grad is set); the hook must not change .grad's values. Null (default): none. Returns
// the previous hook.
using GradReadyHook = std::function<void(const Tensor& leaf)>;
GradReadyHook set_grad_ready_hook(GradReadyHook hook);

namespace detail {
void attach(Tensor& out, const std::shared_ptr<Node>& n, const std::vector<const Tensor*>& inputs);
}

namespace detail {
// Whether an op over `inputs` must be recorded: grad mode on and an input needs grad.
template <class Range>
bool needs_record(const Range& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
template <class F, class Range>
std::shared_ptr<F> record_range(Tensor& out, const Range& inputs) {
  if (!needs_record(inputs)) return nullptr;
  auto n = std::make_shared<F>();
  std::vector<const Tensor*> in;
  for (const Tensor& t : inputs) in.push_back(&t);
  attach(out, n, in);
  if (OpProfile* p = OpProfile::current()) p->on_forward(n);
  return n;
}
}  // namespace detail

// Records `out = op(inputs...)` in the graph when grad mode is on and any input
// requires grad. Returns the new node (to fill with what backward needs), or
// null when nothing is recorded.
template <class F>
std::shared_ptr<F> record(Tensor& out, std::initializer_list<Tensor> inputs) {
  return detail::record_range<F>(out, inputs);
}
// Same, for ops with a variable number of inputs (concat).
template <class F>
std::shared_ptr<F> record_list(Tensor& out, const std::vector<Tensor>& inputs) {
  return detail::record_range<F>(out, inputs);
}

}  // namespace pw
