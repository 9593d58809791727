// Test rows of the loss family (tests/op_test.h): cross_entropy, cross_entropy_soft.
// PyTorch values: tests/fixtures/reduce.json (scripts/reference/reduce.py).
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

PW_OP_TEST(OpTest("cross_entropy", {In({5, 7}), In::index({5}, 7)}, [](X x) { return cross_entropy(x[0], x[1]); })
               .ref("reduce", "cross_entropy"));
PW_OP_TEST(OpTest("cross_entropy", {In({5, 7}), In::index({5}, 7)},
                  [](X x) { return cross_entropy(x[0], x[1], 0.1); })
               .variant("label smoothing 0.1")
               .ref("reduce", "cross_entropy_ls0.1"));
PW_OP_TEST(OpTest("cross_entropy", {In({6, 9}), In::index({6}, 9)},
                  [](X x) { return cross_entropy(x[0], x[1], 0.3); })
               .variant("label smoothing 0.3")
               .ref("reduce", "cross_entropy_ls0.3_large"));
PW_OP_TEST(OpTest("cross_entropy", {In({3, 5}), In::index({3}, 5)}, [](X x) { return cross_entropy(x[0], x[1], 1.0); })
               .variant("label smoothing 1"));
PW_OP_TEST(OpTest("cross_entropy", {In({4, 6}), In::index({4}, 6)},
                  [](X x) { return cross_entropy(x[0] * 3.0, x[1], 0.1); })
               .variant("wide logits, label smoothing 0.1")
               .parity({In({257, 1000}), In::index({257}, 1000)}));

PW_OP_TEST(OpTest("cross_entropy_soft", {In({5, 7}), In({5, 7}, Domain::Positive)},
                  [](X x) { return cross_entropy_soft(x[0], x[1]); })
               .ref("reduce", "cross_entropy_soft"));
PW_OP_TEST(OpTest("cross_entropy_soft", {In({4, 9}), In({4, 9}, Domain::Positive)},
                  [](X x) { return cross_entropy_soft(x[0], x[1]); })
               .variant("many classes")
               .parity({In({129, 1000}), In({129, 1000}, Domain::Positive)})
               .parity_tol(1e-4, 1e-4));

}  // namespace pw::test
