// Forward (and gradient) values committed from PyTorch (STYLE.md, Tests 4).
//
// A fixture tests/fixtures/<family>.json is written by scripts/reference/<family>.py:
//   { "<case>": { "inputs":  [ {"shape": [..], "dtype": "f64"|"i64", "data": [..]}, ... ],
//                 "output":  {"shape": [..], "data": [..]},
//                 "upstream": {...},              # optional: dL/dy fed to backward
//                 "grads":   [ {...} | null, ...] # optional: dL/dx per input
//               }, ... }
// JSON is valid YAML, so yaml-cpp reads it; no extra dependency.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "tests/gradcheck.h"

namespace pw::test {

struct RefTensor {
  Shape shape;
  DType dtype = DType::F64;
  std::vector<double> data;
  bool present = false;
  Tensor tensor() const { return from_vector(data, shape, dtype); }
};

struct RefCase {
  std::vector<RefTensor> inputs;
  RefTensor output, upstream;
  std::vector<RefTensor> grads;
};

inline RefTensor parse_ref_tensor(const YAML::Node& n) {
  RefTensor t;
  if (!n || n.IsNull()) return t;
  t.present = true;
  for (auto d : n["shape"]) t.shape.push_back(d.as<int64_t>());
  if (n["dtype"] && n["dtype"].as<std::string>() == "i64") t.dtype = DType::I64;
  for (auto v : n["data"]) t.data.push_back(v.as<double>());
  return t;
}

inline std::map<std::string, RefCase> load_reference(const std::string& family) {
  std::string path = std::string(PW_SOURCE_DIR) + "/tests/fixtures/" + family + ".json";
  YAML::Node root = YAML::LoadFile(path);
  std::map<std::string, RefCase> out;
  for (auto it : root) {
    RefCase c;
    for (auto in : it.second["inputs"]) c.inputs.push_back(parse_ref_tensor(in));
    c.output = parse_ref_tensor(it.second["output"]);
    c.upstream = parse_ref_tensor(it.second["upstream"]);
    for (auto g : it.second["grads"]) c.grads.push_back(parse_ref_tensor(g));
    out[it.first.as<std::string>()] = c;
  }
  return out;
}

// Runs fn on the fixture's inputs (float64) and compares the output and, where
// the fixture has them, the input gradients for its upstream gradient.
inline void check_reference(const RefCase& rc, const OpFn& fn, double atol = 1e-10, double rtol = 1e-8) {
  std::vector<Tensor> xs;
  for (const RefTensor& r : rc.inputs) {
    Tensor x = r.tensor();
    if (r.dtype != DType::I64 && rc.upstream.present) x.requires_grad_();
    xs.push_back(x);
  }
  Tensor y = fn(xs);
  REQUIRE(y.shape() == rc.output.shape);
  check_close(y.to_vector(), rc.output.data, atol, rtol, "forward");
  if (!rc.upstream.present) return;
  y.backward(rc.upstream.tensor());
  for (size_t k = 0; k < rc.grads.size() && k < xs.size(); ++k) {
    if (!rc.grads[k].present) continue;
    CAPTURE(k);
    REQUIRE(xs[k].grad().defined());
    check_close(xs[k].grad().to_vector(), rc.grads[k].data, atol, rtol, "grad");
  }
}

}  // namespace pw::test
