// Test rows of the index family (tests/op_test.h). Output shapes, i64 rows,
// thread-count independence and bad input stay in tests/test_index.cpp.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {
// Fixed indices with repeats, so the backward scatter-add sums several rows into one.
In idx(Shape s, std::vector<double> v) { return In::fixed(std::move(s), std::move(v), DType::I64); }
}  // namespace

// --- embedding ---
PW_OP_TEST(OpTest("embedding", {In({7, 3}), idx({2, 5}, {4, 0, 4, 6, 4, 1, 4, 6, 2, 0})},
                  [](X x) { return embedding(x[0], x[1]); })
               .variant("repeated indices")
               .ref("shape", "embedding"));
PW_OP_TEST(OpTest("embedding", {In({5, 3}), In::index({3, 7}, 5)}, [](X x) { return embedding(x[0], x[1]); })
               .variant("random indices")
               .parity({In({50, 33}), In::index({9, 70}, 50)}));

// --- index_select ---
PW_OP_TEST(OpTest("index_select", {In({3, 5, 3}), idx({7}, {4, 0, 4, 2, 4, 0, 1})},
                  [](X x) { return index_select(x[0], 1, x[1]); })
               .variant("dim 1")
               .ref("shape", "index_select"));
PW_OP_TEST(OpTest("index_select", {In({5, 3}), idx({4}, {3, 3, 1, 3})}, [](X x) { return index_select(x[0], 0, x[1]); })
               .variant("dim 0")
               .ref("shape", "index_select_0"));
PW_OP_TEST(OpTest("index_select", {In({3, 5}), idx({3}, {2, 2, 2})}, [](X x) { return index_select(x[0], -1, x[1]); })
               .variant("dim -1"));

// --- gather ---
PW_OP_TEST(OpTest("gather", {In({3, 5, 3}), In::index({3, 7, 3}, 5)}, [](X x) { return gather(x[0], 1, x[1]); })
               .variant("dim 1")
               .ref("shape", "gather"));
PW_OP_TEST(OpTest("gather", {In({3, 5, 7}), idx({2, 3, 3}, {0, 4, 1, 1, 1, 4, 3, 2, 1, 0, 0, 0, 4, 4, 4, 2, 3, 2})},
                  [](X x) { return gather(x[0], 1, x[1]); })
               .variant("indices smaller than x"));
PW_OP_TEST(OpTest("gather", {In({3, 5}), In::index({3, 9}, 5)}, [](X x) { return gather(x[0], -1, x[1]); })
               .variant("dim -1")
               .ref("shape", "gather_last"));
PW_OP_TEST(OpTest("gather", {In({5, 3}), In::index({9, 3}, 5)}, [](X x) { return gather(x[0], 0, x[1]); })
               .variant("dim 0"));

}  // namespace pw::test
