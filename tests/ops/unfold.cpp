// Test rows of unfold (tests/op_test.h). Thread-count independence, float32 on
// larger shapes and bad input stay in tests/test_conv.cpp, next to conv's.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

PW_OP_TEST(OpTest("unfold", {In({2, 3, 6, 7})}, [](X x) { return unfold(x[0], {2, 3}, {2, 1}, {1, 1}, {2, 2}); })
               .variant("2x3 dilation (2,1) pad 1 stride 2")
               .ref("conv", "unfold_k23_d21_p11_s22")
               .parity({In({2, 4, 11, 9})}));
PW_OP_TEST(OpTest("unfold", {In({1, 2, 5, 5})}, [](X x) { return unfold(x[0], {3, 3}, {1, 1}, {1, 1}); })
               .variant("3x3 pad 1")
               .parity({In({2, 3, 7, 8})}));
PW_OP_TEST(OpTest("unfold", {In({2, 3, 7, 6})}, [](X x) { return unfold(x[0], {2, 3}, {2, 1}, {1, 0}, {2, 2}); })
               .variant("2x3 dilation (2,1) pad (1,0) stride 2"));

}  // namespace pw::test
