#include "tests/op_test.h"

#include <map>
#include <set>

#include "autograd/op_table.h"
#include "tests/cuda_parity.h"
#include "tests/reference.h"

namespace pw::test {

void check_gradients(const OpTest& t) {
  OpCase c{t.label(), t.inputs, t.fn, t.atol, t.rtol};
  run_op_case(c);
}

void check_f32_vs_f64(const OpTest& t) {
  std::vector<Tensor> x64 = make_inputs(t.inputs), x32;
  for (size_t k = 0; k < x64.size(); ++k) {
    Tensor v = x64[k].detach();
    if (v.dtype() == DType::F64) v = v.to(DType::F32);
    else v = v.clone();
    if (t.inputs[k].grad) v.requires_grad_();
    x32.push_back(v);
  }
  Tensor y64 = t.fn(x64), y32 = t.fn(x32);
  REQUIRE(y32.dtype() == DType::F32);
  REQUIRE(y32.shape() == y64.shape());
  check_close(y32.to_vector(), y64.to_vector(), t.f32_atol, t.f32_rtol, t.label() + " float32 forward");
  if (!y64.requires_grad()) return;
  std::normal_distribution<double> nd(0, 1);
  std::vector<double> uv(y64.numel());
  for (auto& e : uv) e = nd(test_rng());
  y64.backward(from_vector(uv, y64.shape(), DType::F64));
  y32.backward(from_vector(uv, y32.shape(), DType::F32));
  for (size_t k = 0; k < x64.size(); ++k) {
    if (!t.inputs[k].grad) continue;
    CAPTURE(k);
    REQUIRE(x32[k].grad().defined());
    check_close(x32[k].grad().to_vector(), x64[k].grad().to_vector(), t.f32_atol, t.f32_rtol,
                t.label() + " float32 d(input " + std::to_string(k) + ")");
  }
}

void check_pytorch_reference(const OpTest& t) {
  if (t.ref_family.empty()) return;
  static std::map<std::string, std::map<std::string, RefCase>> cache;
  auto it = cache.find(t.ref_family);
  if (it == cache.end()) it = cache.emplace(t.ref_family, load_reference(t.ref_family)).first;
  auto c = it->second.find(t.ref_case);
  REQUIRE_MESSAGE(c != it->second.end(), "tests/fixtures/", t.ref_family, ".json has no case '", t.ref_case, "'");
  check_reference(c->second, t.fn);
}

void check_cuda_parity(const OpTest& t) {
  ParityCase c{t.label(), t.parity_inputs.empty() ? t.inputs : t.parity_inputs, t.fn, t.parity_atol, t.parity_rtol};
  run_parity_case(c);
}

std::vector<std::string> coverage_problems(const std::vector<OpTest>& rows) {
  std::vector<std::string> out;
  std::set<std::string> tested;
  for (const OpTest& r : rows) {
    tested.insert(r.op);
    if (!find_op(r.op)) out.push_back("test row '" + r.label() + "' names no op of the dispatch table");
  }
  for (const OpInfo* op : op_registry())
    if (!tested.count(op->name))
      out.push_back(std::string("op '") + op->name + "' (kernels/" + op->family +
                    ") has a dispatch row but no test row; add one to tests/ops/" + op->family + ".cpp");
  return out;
}

}  // namespace pw::test
