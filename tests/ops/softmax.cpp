// Test rows of the softmax family (tests/op_test.h). PyTorch values: tests/fixtures/reduce.json.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

PW_OP_TEST(OpTest("softmax", {In({3, 5, 7})}, [](X x) { return softmax(x[0]); })
               .variant("dim -1")
               .ref("reduce", "softmax_dneg1"));
PW_OP_TEST(OpTest("softmax", {In({3, 5, 7})}, [](X x) { return softmax(x[0], 1); })
               .variant("dim 1")
               .ref("reduce", "softmax_d1"));
PW_OP_TEST(OpTest("softmax", {In({3, 5, 7})}, [](X x) { return softmax(x[0], 0); })
               .variant("dim 0")
               .ref("reduce", "softmax_d0"));
PW_OP_TEST(OpTest("softmax", {In({4, 9})}, [](X x) { return softmax(x[0], -1); })
               .variant("large logits")
               .ref("reduce", "softmax_large"));
PW_OP_TEST(OpTest("softmax", {In({5, 9})}, [](X x) { return softmax(x[0] * 4.0, -1); })
               .variant("x4, long rows")
               .parity({In({17, 3001})}));
PW_OP_TEST(OpTest("softmax", {In({300})}, [](X x) { return softmax(x[0], 0); }).variant("1-d"));
PW_OP_TEST(OpTest("softmax", {In({})}, [](X x) { return softmax(x[0], 0); }).variant("0-d"));

PW_OP_TEST(OpTest("log_softmax", {In({3, 5, 7})}, [](X x) { return log_softmax(x[0]); })
               .variant("dim -1")
               .ref("reduce", "log_softmax_dneg1"));
PW_OP_TEST(OpTest("log_softmax", {In({3, 5, 7})}, [](X x) { return log_softmax(x[0], -2); })
               .variant("dim -2")
               .ref("reduce", "log_softmax_d1"));
PW_OP_TEST(OpTest("log_softmax", {In({4, 9})}, [](X x) { return log_softmax(x[0]); })
               .variant("large logits")
               .ref("reduce", "log_softmax_large"));
PW_OP_TEST(OpTest("log_softmax", {In({5, 9})}, [](X x) { return log_softmax(x[0] * 4.0); })
               .variant("x4, long rows")
               .parity({In({9, 1025})}));
PW_OP_TEST(OpTest("log_softmax", {In({2, 6, 5})}, [](X x) { return log_softmax(x[0], 1); })
               .variant("strided")
               .parity({In({2, 600, 33})}));

}  // namespace pw::test
