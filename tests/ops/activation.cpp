// Test rows of the activation family (tests/op_test.h).
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

PW_OP_TEST(OpTest("glu", {In({3, 5, 8})}, [](X x) { return glu(x[0]); })
               .variant("dim -1")
               .ref("elementwise", "glu_last")
               .parity({In({64, 130})}));
PW_OP_TEST(OpTest("glu", {In({4, 3, 5})}, [](X x) { return glu(x[0], 0); }).variant("dim 0").parity({In({32, 17, 9})}));
PW_OP_TEST(OpTest("glu", {In({3, 6, 5})}, [](X x) { return glu(x[0], 1); })
               .variant("dim 1")
               .ref("elementwise", "glu_dim1")
               .parity({In({16, 40, 33})}));

}  // namespace pw::test
