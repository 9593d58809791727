// Test rows of the shape family (tests/op_test.h): the copying ops. The views
// (unsqueeze, squeeze, flatten: no kernel, no row), sizes, i64 copies, large
// permutes, thread-count independence and bad input stay in tests/test_shape.cpp.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

// --- permute (transpose is a permute) ---
PW_OP_TEST(OpTest("permute", {In({2, 3, 3, 5, 3})}, [](X x) { return permute(x[0], {2, 0, 3, 1, 4}); })
               .variant("attention")
               .ref("shape", "permute_attn"));
PW_OP_TEST(OpTest("permute", {In({3, 5, 7, 2})}, [](X x) { return permute(x[0], {2, 0, 3, 1}); }).variant("4-d"));
PW_OP_TEST(OpTest("permute", {In({3, 5, 7})}, [](X x) { return permute(x[0], {-1, 0, -2}); }).variant("negative dims"));
PW_OP_TEST(OpTest("permute", {In({2, 3, 4, 5})}, [](X x) { return permute(x[0], {0, 2, 3, -3}); })
               .variant("nchw to nhwc")
               .ref("shape", "permute_nhwc"));
PW_OP_TEST(OpTest("permute", {In({3, 1, 5})}, [](X x) { return transpose(x[0], 0, -1); })
               .variant("transpose")
               .ref("shape", "transpose")
               .parity({In({67, 129})}));
PW_OP_TEST(OpTest("permute", {In({3, 4, 5})},
                  [](X x) { return flatten(squeeze(unsqueeze(permute(x[0], {1, 0, 2}), 1), 1), 1); })
               .variant("between views"));

// --- concat ---
PW_OP_TEST(OpTest("concat", {In({3, 2, 5}), In({3, 1, 5}), In({3, 3, 5})},
                  [](X x) { return concat({x[0], x[1], x[2]}, 1); })
               .variant("dim 1")
               .ref("shape", "concat"));
PW_OP_TEST(OpTest("concat", {In({3, 2}), In({3, 5})}, [](X x) { return concat({x[0], x[1]}, -1); })
               .variant("dim -1")
               .ref("shape", "concat_last"));
PW_OP_TEST(OpTest("concat", {In({3, 5})}, [](X x) { return concat({x[0], x[0]}, 0); }).variant("same input twice"));

// --- split (pieces reassembled out of order: each piece's backward lands in its own part of dx) ---
PW_OP_TEST(OpTest("split", {In({3, 5, 3})},
                  [](X x) {
                    auto p = split(x[0], {2, 0, 3}, 1);
                    return concat({p[2], p[1], p[0]}, 1);
                  })
               .variant("reassembled")
               .parity({In({3, 5, 2})}));
PW_OP_TEST(OpTest("split", {In({5, 3})}, [](X x) { return split(x[0], {2, 0, 3}, 0)[1]; })
               .variant("empty piece")
               .ref("shape", "split_1"));
PW_OP_TEST(OpTest("split", {In({5, 3})}, [](X x) { return split(x[0], {2, 0, 3}, 0)[2]; })
               .variant("last piece")
               .ref("shape", "split_2"));

// --- chunk ---
PW_OP_TEST(OpTest("chunk", {In({7, 3})},
                  [](X x) {
                    auto p = chunk(x[0], 3, 0);  // 3, 3, 1 rows
                    return concat({p[2], p[0], p[1]}, 0);
                  })
               .variant("reassembled")
               .parity({In({7, 5})}));
PW_OP_TEST(OpTest("chunk", {In({4, 7})}, [](X x) { return chunk(x[0], 3, -1)[0]; })
               .variant("first")
               .ref("shape", "chunk_0"));
PW_OP_TEST(OpTest("chunk", {In({4, 7})}, [](X x) { return chunk(x[0], 3, -1)[2]; })
               .variant("last, smaller")
               .ref("shape", "chunk_2"));

// --- narrow, slice ---
PW_OP_TEST(OpTest("narrow", {In({3, 7})}, [](X x) { return narrow(x[0], 1, -5, 3); }).variant("negative start"));
PW_OP_TEST(OpTest("narrow", {In({4, 6})}, [](X x) { return narrow(x[0], 1, -4, 3); })
               .variant("dim 1")
               .ref("shape", "narrow")
               .parity({In({4, 9, 3})}));
PW_OP_TEST(OpTest("slice", {In({5, 7})}, [](X x) { return slice(x[0], -1, -6, 100, 2); })
               .variant("step 2")
               .ref("shape", "slice_step")
               .parity({In({5, 11})}));
PW_OP_TEST(OpTest("slice", {In({5, 11})}, [](X x) { return slice(x[0], 1, 1, -1, 3); }).variant("step 3"));
PW_OP_TEST(OpTest("slice", {In({6, 3})}, [](X x) { return slice(x[0], 0, 1, -2); })
               .variant("negative end")
               .ref("shape", "slice_neg_end"));

// --- pad ---
PW_OP_TEST(OpTest("pad", {In({3, 5})}, [](X x) { return pad(x[0], {2, 1, 1, 3}, 0.3); }).variant("value 0.3"));
PW_OP_TEST(OpTest("pad", {In({3, 5, 7})}, [](X x) { return pad(x[0], {-2, 1, 1, -1}); }).variant("negative pads"));
PW_OP_TEST(OpTest("pad", {In({2, 3, 4})}, [](X x) { return pad(x[0], {1, 2, -1, 2}, 0.5); })
               .variant("grow and crop")
               .ref("shape", "pad")
               .parity({In({3, 4, 5})}));
PW_OP_TEST(OpTest("pad", {In({3, 5})}, [](X x) { return pad(x[0], {-1, -2}); }).variant("crop").ref("shape", "pad_crop"));

// --- roll ---
PW_OP_TEST(OpTest("roll", {In({3, 5, 7})}, [](X x) { return roll(x[0], {-2, 9}, {-1, 1}); }).variant("two dims"));
PW_OP_TEST(OpTest("roll", {In({3, 4, 5})}, [](X x) { return roll(x[0], {-1, 7}, {0, 2}); })
               .variant("dims 0,2")
               .ref("shape", "roll")
               .parity({In({4, 5, 6})}));
PW_OP_TEST(OpTest("roll", {In({3, 5})}, [](X x) { return roll(x[0], {-4}, {}); }).variant("flat, negative"));
PW_OP_TEST(OpTest("roll", {In({3, 4})}, [](X x) { return roll(x[0], {5}, {}); })
               .variant("flat")
               .ref("shape", "roll_flat")
               .parity({In({4, 5})}));

// --- repeat, expand (backward sums over the broadcast dims) ---
PW_OP_TEST(OpTest("repeat", {In({3, 1, 2})}, [](X x) { return repeat(x[0], {2, 1, 3, 2}); })
               .variant("leading rep")
               .parity({In({3, 1, 4})}));
PW_OP_TEST(OpTest("repeat", {In({2, 3})}, [](X x) { return repeat(x[0], {2, 1, 3}); }).variant("2-d").ref("shape", "repeat"));
PW_OP_TEST(OpTest("expand", {In({3, 1, 5})}, [](X x) { return expand(x[0], {2, 3, 4, 5}); })
               .variant("new leading dim")
               .ref("shape", "expand"));
PW_OP_TEST(OpTest("expand", {In({1, 3})}, [](X x) { return expand(x[0], {5, -1}); }).variant("keep -1"));
PW_OP_TEST(OpTest("expand", {In({3, 1})}, [](X x) { return expand(x[0], {2, -1, 4}); })
               .variant("keep -1, new dim")
               .ref("shape", "expand_keep"));
PW_OP_TEST(OpTest("expand", {In({1, 24})}, [](X x) { return expand(x[0], {1000, -1}); })
               .variant("long reduction")
               .parity({In({1, 384})})
               .parity_tol(1e-4, 1e-4));

}  // namespace pw::test
