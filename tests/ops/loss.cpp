// Test rows of the loss family (tests/op_test.h): cross_entropy, cross_entropy_soft, ctc_loss.
// PyTorch values: tests/fixtures/reduce.json (scripts/reference/reduce.py) and
// tests/fixtures/ctc.json (scripts/reference/ctc.py: F.ctc_loss, reduction 'none').
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

// ctc_loss: the targets and lengths of scripts/reference/ctc.py's ctc_inputs(B, T, C, S): labels
// 1 + (7b + 3s) mod (C-1), a repeated label in the even samples (needs a blank between),
// target_lengths S - b mod (S+1) (so one sample may have none), input_lengths T - b.
namespace {
std::vector<In> ctc_inputs(int64_t B, int64_t T, int64_t C, int64_t S) {
  std::vector<double> tg(B * S, 0.0), il(B), tl(B);
  for (int64_t b = 0; b < B; ++b) {
    tl[b] = (double)(((S - b) % (S + 1) + S + 1) % (S + 1));
    il[b] = (double)(T - b);
    for (int64_t s = 0; s < (int64_t)tl[b]; ++s) {
      int64_t v = 1 + (7 * b + 3 * s) % (C - 1);
      if (s == 1 && b % 2 == 0) v = (int64_t)tg[b * S];
      tg[b * S + s] = (double)v;
    }
  }
  return {In({B, T, C}), In::fixed({B, S}, tg, DType::I64), In::fixed({B}, il, DType::I64),
          In::fixed({B}, tl, DType::I64)};
}
}  // namespace
PW_OP_TEST(OpTest("ctc_loss", ctc_inputs(3, 7, 5, 3),
                  [](X x) { return ctc_loss(log_softmax(x[0], -1), x[1], x[2], x[3]); })
               .variant("log_softmax inputs")
               .ref("ctc", "ctc_log_softmax")
               .parity(ctc_inputs(5, 60, 12, 9)));
PW_OP_TEST(OpTest("ctc_loss", ctc_inputs(2, 6, 4, 2), [](X x) { return ctc_loss(x[0], x[1], x[2], x[3]); })
               .variant("raw scores")
               .ref("ctc", "ctc_raw"));
PW_OP_TEST(OpTest("ctc_loss", ctc_inputs(3, 4, 4, 3),
                  [](X x) { return ctc_loss(log_softmax(x[0], -1), x[1], x[2], x[3], 0, true); })
               .variant("infeasible sample, zero_infinity")
               .ref("ctc", "ctc_zero_infinity")
               .parity(ctc_inputs(3, 3, 6, 3)));

}  // namespace pw::test
