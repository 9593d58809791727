// Test rows of the linear_attention family (tests/op_test.h): linear_attention_qkv
// with either feature map, causal or not, with or without a key mask.
// PyTorch values: tests/fixtures/linear_attention.json (scripts/reference/linear_attention.py).
//
// qkv: (B,N,3*NH*HD). The gradient checks run small heads (HD 3 to 5); the parity
// shapes take HD up to 128 (the CUDA limit) and N past a warp. Parity tolerance
// atol 1e-4, rtol 1e-3: both backends sum in float32, in different orders (the CPU
// per (state row, key), CUDA per state entry).
#include <algorithm>
#include <vector>

#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

using FM = LinearFeatureMap;

OpFn lin(int64_t NH, FM fm, bool causal) {
  return [=](X x) { return linear_attention_qkv(x[0], NH, fm, causal); };
}
OpFn lin_masked(int64_t NH, FM fm, bool causal) {
  return [=](X x) { return linear_attention_qkv(x[0], NH, fm, causal, x[1]); };
}
// A key mask (B,N): batch b has its last (b + 1) * N / (B + 2) tokens padded
// (at least one), the first always kept.
In key_mask(int64_t B, int64_t N) {
  std::vector<double> m(B * N, 1.0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t pad = std::max<int64_t>(1, (b + 1) * N / (B + 2));
    pad = std::min<int64_t>(pad, N - 1);
    for (int64_t j = N - pad; j < N; ++j) m[b * N + j] = 0.0;
  }
  return In::fixed({B, N}, m);
}
constexpr double kParityAtol = 1e-4, kParityRtol = 1e-3;

}  // namespace

PW_OP_TEST(OpTest("linear_attention_qkv", {In({2, 5, 24})}, lin(2, FM::Taylor, false))
               .variant("taylor, 2 heads of 4")
               .ref("linear_attention", "taylor_b2_n5_h2_d4")
               .parity({In({2, 37, 3 * 2 * 16})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("linear_attention_qkv", {In({2, 5, 24})}, lin(2, FM::Elu, false))
               .variant("elu, 2 heads of 4")
               .ref("linear_attention", "elu_b2_n5_h2_d4")
               .parity({In({2, 37, 3 * 2 * 16})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("linear_attention_qkv", {In({3, 7, 15})}, lin(1, FM::Taylor, true))
               .variant("taylor, causal, one head of 5")
               .ref("linear_attention", "taylor_causal_b3_n7_h1_d5")
               .parity({In({1, 70, 3 * 128})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("linear_attention_qkv", {In({2, 6, 27})}, lin(3, FM::Elu, true))
               .variant("elu, causal, 3 heads of 3")
               .ref("linear_attention", "elu_causal_b2_n6_h3_d3")
               .parity({In({2, 45, 3 * 3 * 32})})
               .parity_tol(kParityAtol, kParityRtol));
// One token: y = w v / (w + 1e-6) with the single weight w. Elu, not taylor: taylor's
// w = 1 + q^.k^ comes near 0 often in few dims (q, k almost opposite), where y is
// ill-conditioned and float32 cannot follow float64.
PW_OP_TEST(OpTest("linear_attention_qkv", {In({2, 1, 18})}, lin(2, FM::Elu, false))
               .variant("one token, elu")
               .parity({In({3, 1, 3 * 2 * 8})})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("linear_attention_qkv", {In({2, 6, 24}), key_mask(2, 6)}, lin_masked(2, FM::Taylor, false))
               .variant("taylor, key mask")
               .ref("linear_attention", "taylor_mask_b2_n6_h2_d4")
               .parity({In({2, 40, 3 * 2 * 64}), key_mask(2, 40)})
               .parity_tol(kParityAtol, kParityRtol));
PW_OP_TEST(OpTest("linear_attention_qkv", {In({2, 6, 24}), key_mask(2, 6)}, lin_masked(2, FM::Elu, true))
               .variant("elu, causal, key mask")
               .ref("linear_attention", "elu_causal_mask_b2_n6_h2_d4")
               .parity({In({2, 40, 3 * 2 * 64}), key_mask(2, 40)})
               .parity_tol(kParityAtol, kParityRtol));

}  // namespace pw::test
