// Test rows of the posenc family (tests/op_test.h): rel_bias_gather, rel_logits_gather,
// rel_logits_scatter, rope_qkv, rel_shift. PyTorch values: tests/fixtures/pos_enc.json
// (scripts/reference/pos_enc.py).
//
// The index input is drawn in [0, T] and shifted down by one, so -1 (a pair without
// a term: the class token's row and column) turns up among the table rows.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

// The RelIndex of raw - 1 (raw: (N,N) int64 in [0, T]), on raw's device.
RelIndex shifted(const Tensor& raw, int64_t T) {
  std::vector<double> v = raw.cpu().to_vector();
  std::vector<int64_t> idx(v.size());
  for (size_t k = 0; k < v.size(); ++k) idx[k] = (int64_t)v[k] - 1;
  return RelIndex::build(idx, raw.size(0), T, raw.device());
}
// T: the table's rows (rel_bias_gather) or x's last dim (rel_logits_gather), given for the scatter.
OpFn bias_gather() {
  return [=](X x) { return rel_bias_gather(x[0], shifted(x[1], x[0].size(0))); };
}
OpFn logits_gather() {
  return [=](X x) { return rel_logits_gather(x[0], shifted(x[1], x[0].size(-1))); };
}
OpFn logits_scatter(int64_t T) {
  return [=](X x) { return rel_logits_scatter(x[0], shifted(x[1], T)); };
}
OpFn rope(int64_t NH) {
  return [=](X x) { return rope_qkv(x[0], x[1], x[2], NH); };
}

}  // namespace

PW_OP_TEST(OpTest("rel_bias_gather", {In({9, 3}), In::index({5, 5}, 10)}, bias_gather())
               .variant("T 9, 3 heads")
               .ref("pos_enc", "rel_bias_gather")
               .parity({In({49, 4}), In::index({50, 50}, 50)}));
PW_OP_TEST(OpTest("rel_bias_gather", {In({7, 1}), In::index({6, 6}, 8)}, bias_gather())
               .variant("shared head")
               .parity({In({15, 1}), In::index({65, 65}, 16)}));

PW_OP_TEST(OpTest("rel_logits_gather", {In({2, 3, 5, 9}), In::index({5, 5}, 10)}, logits_gather())
               .variant("(B,NH,N,T)")
               .ref("pos_enc", "rel_logits_gather")
               .parity({In({2, 4, 50, 81}), In::index({50, 50}, 82)}));
PW_OP_TEST(OpTest("rel_logits_gather", {In({4, 6, 3}), In::index({6, 6}, 4)}, logits_gather())
               .variant("(R,N,T), T < N")
               .parity({In({3, 65, 9}), In::index({65, 65}, 10)}));

PW_OP_TEST(OpTest("rel_logits_scatter", {In({2, 3, 5, 5}), In::index({5, 5}, 10)}, logits_scatter(9))
               .variant("(B,NH,N,N)")
               .ref("pos_enc", "rel_logits_scatter")
               .parity({In({2, 4, 50, 50}), In::index({50, 50}, 10)}));
PW_OP_TEST(OpTest("rel_logits_scatter", {In({4, 6, 6}), In::index({6, 6}, 4)}, logits_scatter(3))
               .variant("(R,N,N), T < N")
               .parity({In({3, 65, 65}), In::index({65, 65}, 4)}));

PW_OP_TEST(OpTest("rope_qkv", {In({2, 5, 36}), In({5, 2}).no_grad(), In({5, 2}).no_grad()}, rope(3))
               .variant("3 heads of 4")
               .ref("pos_enc", "rope_qkv")
               .parity({In({2, 50, 3 * 3 * 32}), In({50, 16}).no_grad(), In({50, 16}).no_grad()}));
PW_OP_TEST(OpTest("rope_qkv", {In({3, 4, 24}), In({4, 4}).no_grad(), In({4, 4}).no_grad()}, rope(1))
               .variant("one head of 8")
               .parity({In({1, 65, 3 * 64}), In({65, 32}).no_grad(), In({65, 32}).no_grad()}));

PW_OP_TEST(OpTest("rel_shift", {In({2, 3, 5, 9})}, [](X x) { return rel_shift(x[0]); })
               .variant("(B,NH,N,2N-1)")
               .ref("pos_enc", "rel_shift")
               .parity({In({2, 4, 65, 129})}));
PW_OP_TEST(OpTest("rel_shift", {In({1, 1})}, [](X x) { return rel_shift(x[0]); })
               .variant("N = 1 (2D)")
               .parity({In({7, 13})}));

}  // namespace pw::test
