// Module: parameters, buffers and submodules with PyTorch-style dotted names.
//
//   struct Mlp : Module {
//     std::shared_ptr<Linear> fc1, fc2;
//     Mlp(int64_t d, int64_t h) {
//       fc1 = add_module("fc1", std::make_shared<Linear>(d, h));
//       fc2 = add_module("fc2", std::make_shared<Linear>(h, d));
//     }
//     Tensor forward(const Tensor& x) override { return fc2->forward(gelu(fc1->forward(x))); }
//   };
//   state_dict() names: "fc1.weight", "fc1.bias", "fc2.weight", ...
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

struct Param {
  std::string name;   // dotted, from the root module
  Tensor tensor;
  bool decay = true;  // false for norms, biases, position embeddings, tokens
};

class Module {
 public:
  virtual ~Module() = default;
  // Single-input forward; modules with other signatures add their own.
  virtual Tensor forward(const Tensor& x);
  // forward() plus the trace hook (ModuleTrace); call modules this way.
  Tensor operator()(const Tensor& x);
  // Variable-length input (speech): x padded along its last axis, lengths (B) I64 the
  // valid frames of each sample (Batch::lengths). Models that mask their padding
  // override forward_padded; the default takes an undefined `lengths` (fixed-size
  // input) as forward(x) and refuses a defined one, naming the model.
  virtual Tensor forward_padded(const Tensor& x, const Tensor& lengths);
  Tensor operator()(const Tensor& x, const Tensor& lengths);
  // A sequence output's valid frames per sample (CTC's input lengths), (B) I64, from the
  // input's lengths: models that subsample their input override it; default: unchanged.
  virtual Tensor output_lengths(const Tensor& lengths) const { return lengths; }
  virtual const char* type_name() const { return "Module"; }

  std::vector<Param> parameters() const;  // recursive, registration order
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters then buffers, by dotted name (what safetensors checkpoints hold).
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  // Copies values in. Missing or unexpected names are errors naming the key
  // (strict) or skipped (!strict); a shape mismatch is always an error naming
  // the key and both shapes (as PyTorch).
  void load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);
  int64_t num_parameters() const;
  // Moves every parameter, buffer and constant to device d IN PLACE: each tensor keeps its
  // identity (the same TensorImpl, so member fields, parameters() and an
  // optimizer built earlier all see the moved tensor), only its storage and
  // device change. Accumulated gradients are dropped. An optimizer's own state
  // (moments) is NOT moved: build the optimizer after to(), or rebuild it.
  // Returns *this.
  Module& to(Device d);
  Device device() const;  // of the first parameter (or buffer); CPU for an empty module

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 protected:
  // Registers a leaf parameter (sets requires_grad) and returns it.
  Tensor add_param(const std::string& name, Tensor t, bool decay = true);
  Tensor add_buffer(const std::string& name, Tensor t);
  // Registers a fixed tensor that is not state (a sincos position table): to() moves
  // it with the module, state_dict() leaves it out (PyTorch: persistent=False buffers).
  Tensor add_constant(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> add_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, std::vector<Param>& ps) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& bs) const;
  struct Entry { std::string name; Tensor tensor; bool decay; };
  std::vector<Entry> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, Tensor>> constants_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// While alive, records every Module::operator() call on this thread: the
// module, its output shape and the FLOPs of its GEMM-backed ops (patchwork info).
struct ModuleTrace {
  struct Entry {
    const Module* module;
    int depth;        // nesting depth of the call
    Shape out;
    int64_t flops;    // including its children
  };
  std::vector<Entry> entries;
  ModuleTrace();
  ~ModuleTrace();
  ModuleTrace(const ModuleTrace&) = delete;
  ModuleTrace& operator=(const ModuleTrace&) = delete;
};

// In-place initialisers (no history). Fans are PyTorch's: for a weight of
// shape (out, in, k...) fan_in = in*prod(k), fan_out = out*prod(k).
void init_trunc_normal(Tensor& t, double std, Generator* g = nullptr);  // timm's: N(0,std) cut at [-2, 2]
void init_xavier_uniform(Tensor& t, Generator* g = nullptr);
void init_kaiming_uniform(Tensor& t, double a, Generator* g = nullptr);  // PyTorch's Linear default: a = sqrt(5)
void init_uniform(Tensor& t, double lo, double hi, Generator* g = nullptr);
void init_constant(Tensor& t, double v);
void copy_into(Tensor& dst, const Tensor& src);  // same shape; converts dtype; any devices (copies across)

}  // namespace pw
