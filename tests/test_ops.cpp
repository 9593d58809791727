// Every test row of tests/ops/*.cpp (tests/op_test.h): gradients in float64,
// float32 against float64, PyTorch reference values; and the coverage check
// that keeps an op of the dispatch table from landing without a row.
#include "autograd/op_table.h"
#include "tests/op_test.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("every op of the dispatch table has a test row, and every test row an op") {
  const auto problems = coverage_problems(op_tests());
  for (const std::string& p : problems) FAIL_CHECK(p);
  CHECK(problems.empty());
  CHECK(!op_tests().empty());
}

TEST_CASE("gradient check in float64, second backward adds the same again") {
  for (const OpTest& t : op_tests()) {
    if (!t.has_grad()) continue;  // a forward-only op (argmax, an optimizer update)
    SUBCASE(t.label().c_str()) { check_gradients(t); }
  }
}

TEST_CASE("float32 agrees with float64") {
  for (const OpTest& t : op_tests()) {
    if (!t.f32) continue;
    SUBCASE(t.label().c_str()) { check_f32_vs_f64(t); }
  }
}

TEST_CASE("PyTorch reference values") {
  for (const OpTest& t : op_tests()) {
    if (t.ref_family.empty()) continue;
    SUBCASE(t.label().c_str()) { check_pytorch_reference(t); }
  }
}
