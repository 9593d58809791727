// Test rows of the elementwise family (tests/op_test.h). PyTorch values:
// tests/fixtures/elementwise.json. Selection rows use fixed masks, a cond of every dtype.
#include "kernels/elementwise/broadcast.h"
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {
const auto AFZ = Domain::AwayFromZero;
const auto POS = Domain::Positive;
}  // namespace

// --- binary, broadcasting ---
PW_OP_TEST(OpTest("add", {In({3, 5, 7}), In({3, 5, 7})}, [](X x) { return add(x[0], x[1]); })
               .variant("same shape")
               .ref("elementwise", "add_same")
               .parity({In({64, 33}), In({64, 33})}));
PW_OP_TEST(OpTest("add", {In({3, 1, 5}), In({4, 5})}, [](X x) { return x[0] + x[1]; })
               .variant("{3,1,5}+{4,5}")
               .ref("elementwise", "add_bcast")
               .parity({In({4, 1, 33}), In({5, 33})}));
PW_OP_TEST(OpTest("add", {In({5}), In({3, 1})}, [](X x) { return x[0] + x[1]; })
               .variant("{5}+{3,1}")
               .ref("elementwise", "add_both"));
PW_OP_TEST(OpTest("add", {In({3, 5, 7}), In({})}, [](X x) { return x[0] + x[1]; })
               .variant("{3,5,7}+{}")
               .parity({In({7, 9}), In({})}));
PW_OP_TEST(OpTest("add", {In({6, 5}), In({5}).no_grad()}, [](X x) { return x[0] + x[1]; })
               .variant("b no grad")
               .parity({In({1000, 257}), In({257})}));
PW_OP_TEST(OpTest("sub", {In({3, 1, 5}), In({4, 5})}, [](X x) { return sub(x[0], x[1]); })
               .variant("{3,1,5}-{4,5}")
               .parity({In({7, 1}), In({1, 9})}));
PW_OP_TEST(OpTest("sub", {In({4, 5}), In({3, 1, 5})}, [](X x) { return x[0] - x[1]; })
               .variant("{4,5}-{3,1,5}")
               .ref("elementwise", "sub_bcast"));
PW_OP_TEST(OpTest("sub", {In({3, 5, 7}), In({3, 5, 7})}, [](X x) { return x[0] - x[1]; }).variant("same shape"));
PW_OP_TEST(OpTest("mul", {In({3, 5, 7}), In({3, 5, 7})}, [](X x) { return mul(x[0], x[1]); })
               .variant("same shape")
               .parity({In({64, 33}), In({64, 33})}));
PW_OP_TEST(OpTest("mul", {In({3, 1, 5}), In({4, 5})}, [](X x) { return x[0] * x[1]; })
               .variant("{3,1,5}*{4,5}")
               .ref("elementwise", "mul_bcast"));
PW_OP_TEST(OpTest("mul", {In({3, 5, 1}), In({3, 5, 7})}, [](X x) { return x[0] * x[1]; })
               .variant("{3,5,1}*{3,5,7}")
               .ref("elementwise", "mul_inner"));
PW_OP_TEST(OpTest("mul", {In({3, 5, 7}), In({7})}, [](X x) { return x[0] * x[1]; })
               .variant("{3,5,7}*{7}")
               .parity({In({8, 16, 24}), In({24})}));
PW_OP_TEST(OpTest("mul", {In({3, 1, 7}), In({1, 5, 1})}, [](X x) { return x[0] * x[1]; })
               .variant("{3,1,7}*{1,5,1}")
               .parity({In({2, 3, 5, 7}), In({3, 1, 7})}));
PW_OP_TEST(OpTest("mul", {In({2, 3, 4}), In({1})}, [](X x) { return x[0] * x[1]; })
               .variant("{2,3,4}*{1}")
               .ref("elementwise", "mul_scalar_tensor"));
PW_OP_TEST(OpTest("div", {In({3, 5, 7}), In({3, 5, 7}, POS)}, [](X x) { return div(x[0], x[1]); })
               .variant("same shape")
               .parity({In({64, 33}), In({64, 33}, POS)}));
PW_OP_TEST(OpTest("div", {In({3, 1, 5}), In({4, 5}, POS)}, [](X x) { return x[0] / x[1]; })
               .variant("{3,1,5}/{4,5}")
               .ref("elementwise", "div_bcast")
               .parity({In({4, 1, 33}), In({5, 33}, POS)}));
PW_OP_TEST(OpTest("div", {In({4, 5}), In({3, 1, 5}, POS)}, [](X x) { return x[0] / x[1]; })
               .variant("{4,5}/{3,1,5}")
               .ref("elementwise", "div_bcast_b"));

// --- with a scalar ---
PW_OP_TEST(OpTest("add_scalar", {In({3, 5, 7})}, [](X x) { return add(x[0], 1.7); })
               .variant("add(x, s)")
               .parity({In({33, 65})}));
PW_OP_TEST(OpTest("add_scalar", {In({3, 5})}, [](X x) { return x[0] + 1.7; }).variant("x + s").ref("elementwise", "add_scalar"));
PW_OP_TEST(OpTest("add_scalar", {In({3, 5})}, [](X x) { return 0.5 + x[0]; }).variant("s + x"));
PW_OP_TEST(OpTest("add_scalar", {In({3, 5})}, [](X x) { return x[0] - 0.3; })
               .variant("x - s")
               .ref("elementwise", "sub_scalar")
               .parity({In({33, 65})}));
PW_OP_TEST(OpTest("mul_scalar", {In({3, 5, 7})}, [](X x) { return mul(x[0], -2.3); })
               .variant("mul(x, s)")
               .ref("elementwise", "mul_scalar")
               .parity({In({33, 65})}));
PW_OP_TEST(OpTest("mul_scalar", {In({3, 5})}, [](X x) { return 3.0 * x[0]; }).variant("s * x"));
PW_OP_TEST(OpTest("div_scalar", {In({3, 5})}, [](X x) { return x[0] / 1.7; })
               .ref("elementwise", "div_scalar")
               .parity({In({33, 65})}));
PW_OP_TEST(OpTest("rsub_scalar", {In({3, 5})}, [](X x) { return 1.3 - x[0]; })
               .ref("elementwise", "rsub_scalar")
               .parity({In({33, 65})}));
PW_OP_TEST(OpTest("rdiv_scalar", {In({3, 5}, AFZ)}, [](X x) { return 2.1 / x[0]; })
               .ref("elementwise", "rdiv_scalar")
               .parity({In({33, 65}, AFZ)}));

// --- unary ---
PW_OP_TEST(OpTest("neg", {In({3, 5, 7})}, [](X x) { return neg(x[0]); }).ref("elementwise", "neg").parity({In({33, 65})}));
PW_OP_TEST(OpTest("neg", {In({3, 5})}, [](X x) { return -x[0]; }).variant("-x"));
PW_OP_TEST(OpTest("exp", {In({3, 5, 7})}, [](X x) { return exp(x[0]); }).ref("elementwise", "exp").parity({In({33, 65})}));
PW_OP_TEST(OpTest("exp", {In({4, 7})}, [](X x) { return exp(x[0] * 0.5) - x[0]; })
               .variant("chain")
               .parity({In({513, 1031})}));
PW_OP_TEST(OpTest("log", {In({3, 5, 7}, POS)}, [](X x) { return log(x[0]); })
               .ref("elementwise", "log")
               .parity({In({33, 65}, POS)}));
PW_OP_TEST(OpTest("sqrt", {In({3, 5, 7}, POS)}, [](X x) { return sqrt(x[0]); })
               .ref("elementwise", "sqrt")
               .parity({In({33, 65}, POS)}));
PW_OP_TEST(OpTest("rsqrt", {In({3, 5, 7}, POS)}, [](X x) { return rsqrt(x[0]); })
               .ref("elementwise", "rsqrt")
               .parity({In({33, 65}, POS)}));
PW_OP_TEST(OpTest("abs", {In({3, 5, 7}, AFZ)}, [](X x) { return abs(x[0]); })
               .ref("elementwise", "abs")
               .parity({In({33, 65}, AFZ)}));
PW_OP_TEST(OpTest("pow", {In({3, 5, 7})}, [](X x) { return pow(x[0], 3.0); }).variant("p 3").ref("elementwise", "pow3"));
PW_OP_TEST(OpTest("pow", {In({3, 5, 7}, POS)}, [](X x) { return pow(x[0], 2.5); })
               .variant("p 2.5")
               .ref("elementwise", "pow_frac")
               .parity({In({33, 65}, POS)}));
PW_OP_TEST(OpTest("pow", {In({3, 5, 7}, POS)}, [](X x) { return pow(x[0], -1.5); })
               .variant("p -1.5")
               .ref("elementwise", "pow_neg"));
PW_OP_TEST(OpTest("pow", {In({3, 5})}, [](X x) { return pow(x[0], 0.0); })
               .variant("p 0")
               .parity({In({33, 65}, POS)}));
PW_OP_TEST(OpTest("clamp", {In({3, 5, 7}, AFZ)}, [](X x) { return clamp(x[0], -0.9, 1.1); })
               .variant("[-0.9, 1.1]"));
PW_OP_TEST(OpTest("clamp", {In({3, 5, 7})}, [](X x) { return clamp(x[0], -0.5, 0.7); })
               .variant("[-0.5, 0.7]")
               .ref("elementwise", "clamp")
               .parity({In({33, 65})}));

// --- selection ---
PW_OP_TEST(OpTest("where",
                  {In::fixed({3, 1, 5}, {1, 0, 0, 2, 1, 0, 1, 1, 0, 0, -3, 0, 1, 0, 1}, DType::I64), In({4, 5}),
                   In({3, 4, 1})},
                  [](X x) { return where(x[0], x[1], x[2]); })
               .variant("i64 cond {3,1,5} {4,5} {3,4,1}")
               .ref("elementwise", "where"));
PW_OP_TEST(OpTest("where", {In::fixed({5}, {0.5, 0, -1, 0, 0}), In({3, 5}), In({3, 1})},
                  [](X x) { return where(x[0], x[1], x[2]); })
               .variant("f64 cond {5}"));
PW_OP_TEST(OpTest("where", {In::fixed({3, 1}, {0, 1, 0}, DType::F32), In({3, 5}), In({5})},
                  [](X x) { return where(x[0], x[1], x[2]); })
               .variant("f32 cond {3,1}"));
PW_OP_TEST(OpTest("where", {In::index({5, 7}, 2), In({5, 7}), In({5, 7})}, [](X x) { return where(x[0], x[1], x[2]); })
               .variant("random i64 cond"));
PW_OP_TEST(OpTest("where", {In::index({5, 1}, 2), In({1, 7}), In({5, 7})}, [](X x) { return where(x[0], x[1], x[2]); })
               .variant("random i64 cond, broadcast"));
PW_OP_TEST(OpTest("where",
                  {In::fixed({4, 5}, {1, 0, 0.5, 0, 1, 0, 0, -2, 1, 1, 0, 0, 0, 1, 0, 0.25, 1, 0, 1, 0}), In({4, 5}),
                   In({5})},
                  [](X x) { return where(x[0], x[1], x[2]); })
               .variant("f64 cond {4,5} {4,5} {5}")
               .ref("elementwise", "where_f64_cond"));
PW_OP_TEST(OpTest("masked_fill", {In({3, 4, 5}), In::fixed({4, 1}, {1, 0, 0, 1}, DType::I64)},
                  [](X x) { return masked_fill(x[0], x[1], -1.5); })
               .variant("mask {4,1}")
               .ref("elementwise", "masked_fill"));
PW_OP_TEST(OpTest("masked_fill",
                  {In({3, 5}), In::fixed({3, 5}, {1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0})},
                  [](X x) { return masked_fill(x[0], x[1], -7.5); })
               .variant("same shape"));
PW_OP_TEST(OpTest("masked_fill", {In({4, 6, 9}), In::index({6, 1}, 2)},
                  [](X x) { return masked_fill(x[0], x[1], -3.5); })
               .variant("random mask"));

// --- broadcast gradient sums (forward-only helpers of the backward passes) ---
PW_OP_TEST(OpTest("sum_to_shape", {In({3, 40, 5}).no_grad(), In({3, 1, 5}).no_grad()},
                  [](X x) {
                    Tensor d = x[1].clone();
                    sum_to_shape_acc(d, x[0], 0.5);
                    return d;
                  })
               .variant("K R K")
               .parity({In({3, 4001, 5}).no_grad(), In({3, 1, 5}).no_grad()}));
PW_OP_TEST(OpTest("sum_to_shape", {In({7, 9}).no_grad(), In({9}).no_grad()},
                  [](X x) {
                    Tensor d = x[1].clone();
                    sum_to_shape_acc(d, x[0]);
                    return d;
                  })
               .variant("missing leading dim"));
PW_OP_TEST(OpTest("sum_prod_to_shape", {In({6, 11}).no_grad(), In({6, 11}).no_grad(), In({6, 1}).no_grad()},
                  [](X x) {
                    Tensor d = x[2].clone();
                    sum_prod_to_shape_acc(d, x[0], x[1]);
                    return d;
                  })
               .parity({In({50, 3001}).no_grad(), In({50, 3001}).no_grad(), In({50, 1}).no_grad()}));

}  // namespace pw::test
