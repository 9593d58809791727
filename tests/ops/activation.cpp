// Test rows of the activation family (tests/op_test.h). PyTorch values:
// tests/fixtures/elementwise.json (one fixture for both families).
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

// --- one-input maps (the unary kernels of kernels/elementwise/unary.h) ---
PW_OP_TEST(OpTest("relu", {In({3, 5, 7}, Domain::AwayFromZero)}, [](X x) { return relu(x[0]); })
               .ref("elementwise", "relu")
               .parity({In({65, 129}, Domain::AwayFromZero)}));
PW_OP_TEST(OpTest("gelu", {In({3, 5, 7})}, [](X x) { return gelu(x[0]); })
               .ref("elementwise", "gelu")
               .parity({In({65, 129})}));
PW_OP_TEST(OpTest("gelu", {In({4, 9})}, [](X x) { return gelu(x[0]); }).variant("large").parity({In({1024, 1031})}));
PW_OP_TEST(OpTest("gelu_tanh", {In({3, 5, 7})}, [](X x) { return gelu_tanh(x[0]); })
               .ref("elementwise", "gelu_tanh")
               .parity({In({65, 129})}));
PW_OP_TEST(OpTest("silu", {In({3, 5, 7})}, [](X x) { return silu(x[0]); })
               .ref("elementwise", "silu")
               .parity({In({65, 129})}));
PW_OP_TEST(OpTest("sigmoid", {In({3, 5, 7})}, [](X x) { return sigmoid(x[0]); })
               .ref("elementwise", "sigmoid")
               .parity({In({65, 129})}));
PW_OP_TEST(OpTest("tanh", {In({3, 5, 7})}, [](X x) { return tanh(x[0]); })
               .ref("elementwise", "tanh")
               .parity({In({65, 129})}));
// normal(0, 1) * 2.5 reaches both flat parts; the kinks at +-3 are measure zero.
PW_OP_TEST(OpTest("hardswish", {In({3, 5, 7})}, [](X x) { return hardswish(x[0] * 2.5); })
               .variant("x * 2.5")
               .parity({In({65, 129})}));
PW_OP_TEST(OpTest("hardswish", {In({4, 5})}, [](X x) { return hardswish(x[0]); }).ref("elementwise", "hardswish"));

// --- glu ---
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
