// Test rows of the norm family (tests/op_test.h): layer_norm, batch_norm.
// PyTorch values: tests/fixtures/norm.json (scripts/reference/norm.py).
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

Tensor ln_affine(X x) { return layer_norm(x[0], x[1], x[2]); }

// Inputs x, weight, bias, running_mean, running_var. In training the output does
// not depend on the running statistics, which the op updates in place: repeated
// forwards (gradcheck, doubling) see the same function.
Tensor bn_train(X x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], /*training=*/true); }
Tensor bn_eval(X x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], /*training=*/false); }

// x (shape), weight, bias (C), running_mean (C), running_var (C, positive); no gradient for the last two.
std::vector<In> bn_inputs(Shape x) {
  const int64_t C = x[1];
  return {In(x), In({C}), In({C}), In({C}).no_grad(), In({C}, Domain::Positive).no_grad()};
}

// SyncBN seen by one process of two: the other ("phantom") process's batch has fixed
// per-channel statistics and contributes zero backward sums (its dy is 0), so the op stays
// a function of this process's x alone, whose gradient gradcheck can check: the global
// mean, variance and count enter forward and dx; dw, db are this process's.
struct PhantomSync final : BatchNormSync {
  void combine_moments(std::vector<double>& m) override {
    std::vector<double> other(m.size());
    for (size_t k = 0; k + 2 < m.size(); k += 3) {
      other[k] = 6;                          // count
      other[k + 1] = 0.3 - 0.05 * (double)k;  // mean
      other[k + 2] = 2.0 + 0.5 * (double)k;   // M2
    }
    m = pw::combine_moments({m, other});  // this process is rank 0
  }
  void sum(std::vector<double>&) override {}  // + the phantom's zeros
};
PhantomSync phantom;
Tensor bn_sync(X x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], /*training=*/true, 0.1, 1e-5, &phantom); }

}  // namespace

PW_OP_TEST(OpTest("layer_norm", {In({3, 5, 7}), In({7}), In({7})}, ln_affine)
               .variant("affine")
               .ref("norm", "layer_norm_affine"));
PW_OP_TEST(OpTest("layer_norm", {In({3, 11}), In({11}), In({11})}, ln_affine)
               .variant("affine, many rows")
               .ref("norm", "layer_norm_shifted")
               // Several 64-row chunks of the dw/db partial sums; C > the block, not a multiple of 32.
               // dw, db sum 300 products: atol scaled to the sum (float accumulation order differs).
               .parity({In({300, 777}), In({777}), In({777})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("layer_norm", {In({5, 9})}, [](X x) { return layer_norm(x[0], Tensor(), Tensor()); })
               .variant("plain")
               .ref("norm", "layer_norm_plain")
               .parity({In({33, 9})}));
PW_OP_TEST(OpTest("layer_norm", {In({4, 7}), In({7})}, [](X x) { return layer_norm(x[0], x[1], Tensor(), 1e-3); })
               .variant("weight only, eps 1e-3"));
PW_OP_TEST(OpTest("layer_norm", {In({4, 5}), In({5}), In({5})}, [](X x) { return layer_norm(x[0], x[1], x[2], 0.1); })
               .variant("eps 0.1")
               .ref("norm", "layer_norm_eps0.1"));

PW_OP_TEST(OpTest("batch_norm", bn_inputs({5, 3}), bn_train).variant("train 2d").ref("norm", "batch_norm_train_2d"));
PW_OP_TEST(OpTest("batch_norm", bn_inputs({3, 5, 7}), bn_train).variant("train 3d").ref("norm", "batch_norm_train_3d"));
PW_OP_TEST(OpTest("batch_norm", bn_inputs({3, 3, 5, 3}), bn_train)
               .variant("train 4d")
               .ref("norm", "batch_norm_train_4d")
               .parity(bn_inputs({8, 6, 9, 11}))
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("batch_norm", {In({3, 5, 7})},
                  [](X x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); })
               .variant("train, no affine, no running statistics"));
PW_OP_TEST(OpTest("batch_norm", bn_inputs({3, 4, 5}), bn_sync)
               .variant("train 3d, SyncBN with a phantom second process")
               .parity(bn_inputs({6, 5, 7, 9}))
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("batch_norm", bn_inputs({3, 5, 3, 3}), bn_eval).variant("eval 4d").ref("norm", "batch_norm_eval_4d"));
PW_OP_TEST(OpTest("batch_norm", bn_inputs({5, 3}), bn_eval).variant("eval 2d").ref("norm", "batch_norm_eval_2d"));
PW_OP_TEST(OpTest("batch_norm", bn_inputs({5, 3}),
                  [](X x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], false, 0.1, 1e-3); })
               .variant("eval 2d, eps 1e-3"));

}  // namespace pw::test
