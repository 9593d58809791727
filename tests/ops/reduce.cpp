// Test rows of the reduce family (tests/op_test.h). Bad input, brute-force
// dim sets, thread-count independence and edge cases stay in tests/test_reduce.cpp.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

// --- sum ---
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0]); })
               .variant("all")
               .ref("reduce", "sum_all")
               .parity({In({1 << 20})}));
PW_OP_TEST(OpTest("sum", {In({37, 65})}, [](X x) { return sum(x[0]); }).variant("all 2-d"));
PW_OP_TEST(OpTest("sum", {In({})}, [](X x) { return sum(x[0]); }).variant("0-d"));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0], {1}); }).variant("dim 1").ref("reduce", "sum_d1"));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0], {1}, true); }).variant("dim 1 keepdim"));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0], {0, 2}, true); })
               .variant("dims 0,2 keepdim")
               .ref("reduce", "sum_d0_2_keep"));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0], {-1}); })
               .variant("dim -1")
               .ref("reduce", "sum_dneg1")
               .parity({In({37, 65})}));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0], {0}); })
               .variant("dim 0 (columns)")
               .parity({In({4096, 3})}));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7})}, [](X x) { return sum(x[0], {0, 1}); }).variant("dims 0,1").ref("reduce", "sum_d0_1"));
PW_OP_TEST(OpTest("sum", {In({2, 3, 5, 3})}, [](X x) { return sum(x[0], {1, 3}); })
               .variant("4-d dims 1,3")
               .ref("reduce", "sum_4d_d1_3"));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7, 2})}, [](X x) { return sum(x[0], {1, 3}, true); }).variant("4-d dims 1,3 keepdim"));
PW_OP_TEST(OpTest("sum", {In({3, 5, 7, 2})}, [](X x) { return sum(x[0], {0, 2}); }).variant("4-d dims 0,2"));
PW_OP_TEST(OpTest("sum", {In({3, 1, 5, 1})}, [](X x) { return sum(x[0], {1, 2}); })
               .variant("size-1 dims"));
PW_OP_TEST(OpTest("sum", {In({1, 5, 1, 7})}, [](X x) { return sum(x[0], {0, 2}); }).variant("size-1 reduced dims"));

// --- mean ---
PW_OP_TEST(OpTest("mean", {In({3, 5, 7})}, [](X x) { return mean(x[0]); })
               .variant("all")
               .ref("reduce", "mean_all")
               .parity({In({37, 65})}));
PW_OP_TEST(OpTest("mean", {In({3, 5, 7})}, [](X x) { return mean(x[0], {0, 2}); })
               .variant("dims 0,2")
               .ref("reduce", "mean_d0_2"));
PW_OP_TEST(OpTest("mean", {In({3, 5, 7})}, [](X x) { return mean(x[0], {-2}, true); })
               .variant("dim -2 keepdim")
               .ref("reduce", "mean_dneg2_keep"));
PW_OP_TEST(OpTest("mean", {In({3, 4, 9})}, [](X x) { return mean(x[0], {-1}, true); })
               .variant("dim -1 keepdim")
               .parity({In({8, 9, 300})}));
PW_OP_TEST(OpTest("mean", {In({3, 4, 5})}, [](X x) { return mean(x[0], {0, 1}); })
               .variant("dims 0,1")
               .parity({In({8, 9, 30})}));

// --- var ---
PW_OP_TEST(OpTest("var", {In({3, 5, 7})}, [](X x) { return var(x[0], {1}); }).variant("dim 1").ref("reduce", "var_d1"));
PW_OP_TEST(OpTest("var", {In({3, 5, 7})}, [](X x) { return var(x[0], {0, 2}, false, true); })
               .variant("dims 0,2 biased keepdim")
               .ref("reduce", "var_d0_2_biased_keep")
               .parity({In({8, 9, 30})}));
PW_OP_TEST(OpTest("var", {In({3, 5, 7})}, [](X x) { return var(x[0], {}); })
               .variant("all")
               .ref("reduce", "var_all")
               .parity({In({33, 17})}));
PW_OP_TEST(OpTest("var", {In({3, 5, 7})}, [](X x) { return var(x[0], {-1}, false); })
               .variant("dim -1 biased")
               .ref("reduce", "var_dneg1_biased"));
PW_OP_TEST(OpTest("var", {In({3, 4, 6})}, [](X x) { return var(x[0], {-1}); }).variant("dim -1").parity({In({8, 9, 30})}));

// --- max (values; indices are checked as a forward-only variant) ---
PW_OP_TEST(OpTest("max", {In({3, 5, 7}, Domain::Distinct)}, [](X x) { return max(x[0], 1).values; })
               .variant("dim 1")
               .ref("reduce", "max_d1")
               .parity({In({4, 300, 5}, Domain::Distinct)}));
PW_OP_TEST(OpTest("max", {In({3, 5, 7}, Domain::Distinct)}, [](X x) { return max(x[0], -1, true).values; })
               .variant("dim -1 keepdim")
               .ref("reduce", "max_dneg1_keep")
               .parity({In({9, 33}, Domain::Distinct)}));
PW_OP_TEST(OpTest("max", {In({3, 5, 7}, Domain::Distinct)}, [](X x) { return max(x[0], 0).values; })
               .variant("dim 0")
               .parity({In({9, 33}, Domain::Distinct)}));
PW_OP_TEST(OpTest("max", {In({3, 40}, Domain::Distinct)}, [](X x) { return max(x[0], 1).values; })
               .variant("long rows")
               .parity({In({3, 5000}, Domain::Distinct)}));
PW_OP_TEST(OpTest("max", {In({3, 5, 7}, Domain::Distinct).no_grad()}, [](X x) { return max(x[0], 1).indices; })
               .variant("dim 1 indices")
               .no_f32()
               .ref("reduce", "max_d1_indices"));

// --- amax ---
PW_OP_TEST(OpTest("amax", {In({3, 5, 7}, Domain::Distinct)}, [](X x) { return amax(x[0]); })
               .variant("all")
               .ref("reduce", "amax")
               .parity({In({37, 65}, Domain::Distinct)}));

}  // namespace pw::test
