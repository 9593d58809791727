// CPU/CUDA parity for every test row (tests/op_test.h) whose op has CUDA
// kernels in the dispatch table. Without a device the suite reports itself
// skipped (tests/skip.h).
#include "autograd/op_table.h"
#include "tests/cuda_parity.h"
#include "tests/op_test.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("CPU/CUDA parity of every op with CUDA kernels") {
  PW_SKIP_WITHOUT_CUDA();
  int run = 0;
  for (const OpTest& t : op_tests()) {
    const OpInfo* op = find_op(t.op);
    REQUIRE_MESSAGE(op, "test row '", t.label(), "' names no op");
    if (!op->fwd[(int)Device::CUDA]) continue;
    ++run;
    SUBCASE(t.label().c_str()) { check_cuda_parity(t); }
  }
  CHECK(run > 0);
}
