// Test rows of the attention family (tests/op_test.h): attention_qkv, attention_qkv_bias.
// PyTorch values: tests/fixtures/attention.json (scripts/reference/attention.py).
//
// qkv: (B,N,3*NH*HD). The gradient checks run small heads (HD 2 to 6); the parity
// shapes keep the row's heads and take HD in {16, 32, 64, 128}, the head dims the
// CUDA (flash) kernels run. Parity tolerance atol 1e-4, rtol 1e-3 (the flash kernels'
// own check against a double reference): the CPU sums each row of p v and ds k in one
// GEMM order, CUDA in tiles of 32 keys with an online-softmax rescale.
#include <cmath>

#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

// attention_qkv with NH heads and the given scale.
OpFn attn(int64_t NH, double scale) {
  return [=](X x) { return attention_qkv(x[0], NH, scale); };
}
OpFn attn_bias(int64_t NH, double scale) {
  return [=](X x) { return attention_qkv_bias(x[0], x[1], NH, scale); };
}
constexpr double kParityAtol = 1e-4, kParityRtol = 1e-3;

}  // namespace

PW_OP_TEST(OpTest("attention_qkv", {In({2, 5, 36})}, attn(3, 0.5))
               .variant("3 heads of 4")
               .ref("attention", "b2_n5_h3_d4")
               .parity({In({2, 37, 3 * 3 * 16})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv", {In({3, 7, 18})}, attn(1, 1 / std::sqrt(6.0)))
               .variant("one head of 6")
               .ref("attention", "b3_n7_h1_d6")
               .parity({In({1, 70, 3 * 128})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv", {In({2, 1, 12})}, attn(2, 1.0))
               .variant("one token")
               .ref("attention", "b1_n1_h2_d3")
               .parity({In({3, 1, 3 * 2 * 32})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv", {In({2, 9, 24})}, attn(2, 0.35))
               .variant("2 heads of 4, N 130 on parity")
               .parity({In({2, 130, 3 * 2 * 64})})
               .parity_tol(kParityAtol, kParityRtol));

// Every accepted bias layout, and a bias or qkv without a gradient.
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}), In({3, 5, 5})}, attn_bias(3, 0.5))
               .variant("(NH,N,N)")
               .parity({In({2, 45, 3 * 3 * 32}), In({3, 45, 45})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}), In({2, 1, 5, 5})}, attn_bias(3, 0.5))
               .variant("(B,1,N,N)")
               .parity({In({2, 45, 3 * 3 * 32}), In({2, 1, 45, 45})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}), In({5, 5})}, attn_bias(3, 0.5))
               .variant("(N,N)")
               .parity({In({2, 33, 3 * 3 * 64}), In({33, 33})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}), In({2, 3, 5, 5})}, attn_bias(3, 0.5))
               .variant("(B,NH,N,N)")
               .parity({In({2, 40, 3 * 3 * 16}), In({2, 3, 40, 40})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv_bias", {In({3, 7, 18}), In({1, 1, 7, 7})}, attn_bias(1, 0.41))
               .variant("(1,1,N,N), one head")
               .parity({In({2, 20, 3 * 32}), In({1, 1, 20, 20})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}), In({3, 5, 5}).no_grad()}, attn_bias(3, 0.5))
               .variant("bias without grad")
               .parity({In({2, 45, 3 * 3 * 32}), In({3, 45, 45}).no_grad()})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}).no_grad(), In({2, 1, 5, 5})}, attn_bias(3, 0.5))
               .variant("qkv without grad")
               .parity({In({2, 45, 3 * 3 * 32}).no_grad(), In({2, 1, 45, 45})})
               .parity_tol(kParityAtol, kParityRtol));

// The same qkv and bias in two attentions: the second backward adds into the gradient
// buffers the first wrote (GradBuf accumulate), on CUDA through add_into_kernel for dbias.
PW_OP_TEST(OpTest("attention_qkv_bias", {In({2, 5, 36}), In({3, 5, 5})},
                  [](X x) { return attention_qkv_bias(x[0], x[1], 3, 0.5) + attention_qkv_bias(x[0], x[1], 3, 0.3); })
               .variant("qkv and bias used twice (accumulating gradients)")
               .parity({In({2, 45, 3 * 3 * 32}), In({3, 45, 45})})
               .parity_tol(kParityAtol, kParityRtol));

}  // namespace pw::test
