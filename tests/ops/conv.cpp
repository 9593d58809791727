// Test rows of the conv family (tests/op_test.h): conv2d and conv1d, dense,
// grouped and depthwise. PyTorch values: tests/fixtures/conv.json
// (scripts/reference/conv.py). Parity runs the native CUDA engine; the cuDNN
// engine is compared in tests/test_conv_cuda.cpp. NOTE: float parity sums over
// C*KH*KW (and B*OH*OW for dw) terms in another order than the CPU's GEMM: atol
// 1e-4 for sums of up to ~600 N(0,1) products.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {
constexpr double kAt = 1e-4, kRt = 1e-4;  // parity
}  // namespace

// conv2d, dense
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 7, 6}), In({4, 3, 3, 3}), In({4})}, [](X x) { return conv2d(x[0], x[1], x[2]); })
               .variant("plain 3x3")
               .ref("conv", "conv2d_plain"));
PW_OP_TEST(OpTest("conv2d", {In({1, 2, 5, 4}), In({3, 2, 3, 3}), In({3})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); })
               .variant("3x3 pad 1 bias")
               .parity({In({2, 5, 9, 11}), In({7, 5, 3, 3}), In({7})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({1, 2, 7, 6}), In({3, 2, 3, 3})},
                  [](X x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {1, 0}); })
               .variant("stride 2 no bias")
               .parity({In({3, 4, 13, 10}), In({6, 4, 3, 3})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({1, 2, 10, 7}), In({2, 2, 5, 3}), In({2})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 2}, {2, 1}, {2, 2}); })
               .variant("dilation 2, 5x3")
               .parity({In({2, 3, 14, 12}), In({5, 3, 5, 3}), In({5})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({1, 2, 9, 11}), In({3, 2, 2, 3})},
                  [](X x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {1, 0}, {2, 2}); })
               .variant("stride 2 both, dilation 2 both"));
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 7, 9}), In({5, 3, 3, 3}), In({5})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {3, 3}); })
               .variant("patch embed stride 3"));
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 8, 12}), In({5, 3, 4, 4})}, [](X x) { return conv2d(x[0], x[1], Tensor(), {4, 4}); })
               .variant("patch embed 4x4 s4 no bias")
               .ref("conv", "conv2d_patch_nobias")
               .parity({In({2, 3, 16, 16}), In({24, 3, 4, 4})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({2, 5, 3, 5}), In({3, 5, 1, 1})}, [](X x) { return conv2d(x[0], x[1]); })
               .variant("1x1 no bias"));
PW_OP_TEST(OpTest("conv2d", {In({2, 5, 3, 5}), In({3, 5, 1, 1}), In({3})}, [](X x) { return conv2d(x[0], x[1], x[2]); })
               .variant("1x1 bias")
               .parity({In({3, 16, 7, 5}), In({9, 16, 1, 1}), In({9})})
               .parity_tol(kAt, kRt));

// conv2d, grouped
PW_OP_TEST(OpTest("conv2d", {In({2, 4, 9, 8}), In({6, 2, 3, 2}), In({6})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {2, 1}, {1, 2}, {2, 1}, 2); })
               .variant("stride 2, padding, dilation 2, groups 2")
               .ref("conv", "conv2d_s2_p1_d2_g2"));
PW_OP_TEST(OpTest("conv2d", {In({1, 4, 5, 5}), In({4, 2, 3, 3}), In({4})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); })
               .variant("groups 2")
               .parity({In({2, 6, 8, 9}), In({4, 3, 3, 3}), In({4})})
               .parity_tol(kAt, kRt));

// conv2d, depthwise (groups == C)
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 7, 7}), In({3, 1, 3, 3}), In({3})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}, {1, 1}, 3); })
               .variant("depthwise stride 2"));
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 7, 7}), In({6, 1, 3, 3}), In({6})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}, {1, 1}, 3); })
               .variant("depthwise stride 2, x2 channels")
               .ref("conv", "conv2d_depthwise_m2"));
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 7, 9}), In({6, 1, 3, 3}), In({6})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 2}, {2, 1}, {2, 2}, 3); })
               .variant("depthwise x2, dilation 2, stride (1,2)"));
PW_OP_TEST(OpTest("conv2d", {In({2, 3, 7, 8}), In({6, 1, 3, 2}), In({6})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 1}, {2, 1}, {2, 1}, 3); })
               .variant("depthwise stride 1, x2, dilation (2,1), padding (2,1)"));
PW_OP_TEST(OpTest("conv2d", {In({1, 4, 5, 6}), In({4, 1, 3, 3})},
                  [](X x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {0, 0}, {1, 1}, 4); })
               .variant("depthwise stride 1, no padding"));
PW_OP_TEST(OpTest("conv2d", {In({1, 4, 6, 7}), In({4, 1, 7, 3}), In({4})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 1}, {3, 1}, {1, 2}, 4); })
               .variant("depthwise stride 1, 7x3, dilation (1,2)")
               .ref("conv", "conv2d_depthwise_s1"));
PW_OP_TEST(OpTest("conv2d", {In({1, 8, 4, 4}), In({8, 1, 3, 3}), In({8})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 8); })
               .variant("depthwise 3x3 s1")
               .parity({In({2, 8, 10, 9}), In({8, 1, 3, 3}), In({8})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({1, 4, 6, 5}), In({8, 1, 5, 5})},
                  [](X x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {2, 2}, {1, 1}, 4); })
               .variant("depthwise 5x5 s2, x2 channels")
               .parity({In({2, 4, 11, 12}), In({8, 1, 5, 5})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({1, 6, 7, 8}), In({6, 1, 7, 7}), In({6})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {1, 1}, {3, 3}, {2, 2}, 6); })
               .variant("depthwise 7x7 dilation 2")
               .parity({In({1, 6, 15, 15}), In({6, 1, 7, 7}), In({6})})
               .parity_tol(kAt, kRt));

// conv1d
PW_OP_TEST(OpTest("conv1d", {In({2, 4, 11}), In({6, 2, 3}), In({6})},
                  [](X x) { return conv1d(x[0], x[1], x[2], 2, 1, 2, 2); })
               .variant("stride 2, padding, dilation 2, groups 2")
               .ref("conv", "conv1d_s2_p1_d2_g2"));
PW_OP_TEST(OpTest("conv1d", {In({2, 5, 9}), In({5, 1, 3})}, [](X x) { return conv1d(x[0], x[1], Tensor(), 1, 1, 1, 5); })
               .variant("depthwise"));
PW_OP_TEST(OpTest("conv1d", {In({2, 3, 6}), In({4, 3, 3}), In({4})}, [](X x) { return conv1d(x[0], x[1], x[2], 1, 1); })
               .variant("k3 pad 1")
               .parity({In({3, 5, 17}), In({8, 5, 3}), In({8})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv1d", {In({1, 6, 7}), In({6, 1, 4})}, [](X x) { return conv1d(x[0], x[1], Tensor(), 2, 1, 1, 6); })
               .variant("depthwise k4 s2")
               .parity({In({2, 6, 20}), In({6, 1, 4})})
               .parity_tol(kAt, kRt));

// The Conformer's convs (nn/conformer.h): depthwise 'same' and causal (pad K-1 on the left,
// then a valid conv: output frame t reads frames t-K+1..t), and the subsampling's 3x3
// stride-2 convs on (B,C,F,T) log-mel planes.
PW_OP_TEST(OpTest("conv1d", {In({2, 4, 12}), In({4, 1, 7}), In({4})},
                  [](X x) { return conv1d(x[0], x[1], x[2], 1, 3, 1, 4); })
               .variant("depthwise same k7 (Conformer)")
               .ref("conv", "conv1d_depthwise_same_k7")
               .parity({In({3, 4, 50}), In({4, 1, 7}), In({4})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv1d", {In({2, 4, 10}), In({4, 1, 5}), In({4})},
                  [](X x) { return conv1d(pad(x[0], {4, 0}), x[1], x[2], 1, 0, 1, 4); })
               .variant("depthwise causal k5 (Conformer: left pad, valid conv)")
               .ref("conv", "conv1d_depthwise_causal_k5")
               .parity({In({3, 4, 40}), In({4, 1, 5}), In({4})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({2, 1, 11, 13}), In({4, 1, 3, 3}), In({4})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {2, 2}); })
               .variant("subsampling 3x3 s2, 1 channel in (Conformer)")
               .ref("conv", "conv2d_subsampling_in")
               .parity({In({2, 1, 80, 101}), In({8, 1, 3, 3}), In({8})})
               .parity_tol(kAt, kRt));
PW_OP_TEST(OpTest("conv2d", {In({2, 4, 5, 6}), In({4, 4, 3, 3}), In({4})},
                  [](X x) { return conv2d(x[0], x[1], x[2], {2, 2}); })
               .variant("subsampling 3x3 s2 (Conformer)")
               .ref("conv", "conv2d_subsampling_mid")
               .parity({In({2, 8, 39, 50}), In({8, 8, 3, 3}), In({8})})
               .parity_tol(kAt, kRt));

}  // namespace pw::test
