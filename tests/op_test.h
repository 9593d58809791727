// One test row per op (STYLE.md, Tests 1-5), the twin of the dispatch row
// (autograd/op_table.h). A row lives in tests/ops/<family>.cpp:
//
//   PW_OP_TEST(OpTest("glu", {In({3, 5, 8})}, [](X x) { return glu(x[0]); })
//                  .variant("dim -1")
//                  .ref("elementwise", "glu_last")        // tests/fixtures/elementwise.json
//                  .parity({In({64, 130})}));              // CPU/CUDA shapes (default: the gradcheck's)
//
// and drives, for every row:
//   test_ops       float64 gradient check (central differences, random upstream
//                  gradient, fresh random inputs), "a second backward adds the
//                  same again", float32-vs-float64 agreement of the output and
//                  every gradient, and the PyTorch reference values when named;
//   test_ops_cuda  CPU/CUDA parity in float32 (forward, every gradient, exact
//                  doubling on a second backward, NaN-poisoned fresh memory)
//                  for every op whose dispatch row has CUDA kernels.
// test_ops fails when an op of the dispatch table has no test row, or a test row
// names an op the table does not have.
#pragma once
#include <string>
#include <vector>

#include "tests/gradcheck.h"

namespace pw::test {

using X = const std::vector<Tensor>&;

struct OpTest {
  std::string op;       // the dispatch row's name (autograd/op_table.h)
  std::string variant_name;  // what tells this row from others of the same op
  std::vector<In> inputs;
  OpFn fn;
  double atol = 1e-5, rtol = 1e-3;          // float64 gradient check
  double f32_atol = 1e-4, f32_rtol = 1e-3;  // float32 against float64
  bool f32 = true;                          // false: the op has no float32 path worth comparing
  std::string ref_family, ref_case;         // PyTorch values: tests/fixtures/<family>.json, case
  std::vector<In> parity_inputs;            // empty: `inputs`
  double parity_atol = 1e-5, parity_rtol = 1e-4;

  OpTest(std::string op_, std::vector<In> in, OpFn f) : op(std::move(op_)), inputs(std::move(in)), fn(std::move(f)) {}
  OpTest& variant(std::string v) { variant_name = std::move(v); return *this; }
  OpTest& tol(double a, double r) { atol = a; rtol = r; return *this; }
  OpTest& f32_tol(double a, double r) { f32_atol = a; f32_rtol = r; return *this; }
  OpTest& no_f32() { f32 = false; return *this; }
  OpTest& ref(std::string family, std::string c) { ref_family = std::move(family); ref_case = std::move(c); return *this; }
  OpTest& parity(std::vector<In> in) { parity_inputs = std::move(in); return *this; }
  OpTest& parity_tol(double a, double r) { parity_atol = a; parity_rtol = r; return *this; }
  bool has_grad() const {
    for (const In& i : inputs)
      if (i.grad) return true;
    return false;
  }
  std::string label() const { return variant_name.empty() ? op : op + " [" + variant_name + "]"; }
};

// Every row of the test binary, in registration order.
inline std::vector<OpTest>& op_tests() {
  static std::vector<OpTest> rows;
  return rows;
}
struct OpTestRegistrar {
  explicit OpTestRegistrar(OpTest t) { op_tests().push_back(std::move(t)); }
};

#define PW_OP_TEST_CAT_(a, b) a##b
#define PW_OP_TEST_CAT(a, b) PW_OP_TEST_CAT_(a, b)
#define PW_OP_TEST(...) \
  static const ::pw::test::OpTestRegistrar PW_OP_TEST_CAT(pw_op_test_, __LINE__)(__VA_ARGS__)

// The checks, one function each (tests/op_test.cpp).
void check_gradients(const OpTest& t);      // float64 gradcheck + second backward doubles
void check_f32_vs_f64(const OpTest& t);     // one random draw, both precisions
void check_pytorch_reference(const OpTest& t);
void check_cuda_parity(const OpTest& t);    // needs a CUDA device
// Ops of the dispatch table without a test row, and test rows naming no op; empty when all is covered.
std::vector<std::string> coverage_problems(const std::vector<OpTest>& rows);

}  // namespace pw::test
