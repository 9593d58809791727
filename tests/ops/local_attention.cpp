// Test rows of the local_attention family (tests/op_test.h): local_attention_rel on
// non-square grids, with and without a class token, with windows inside the grid and
// wider than it. No PyTorch fixture: tests/test_posenc.cpp checks the op against
// SasaTerm's masked O(N^2) composition (itself checked against the formula) to 1e-12.
//
// Inputs q, k, v: (B,NH,M,HD), row, col: (K,HD/2), M = skip + H*W.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

OpFn local(int64_t H, int64_t W, int64_t K, int64_t skip) {
  return [=](X x) { return local_attention_rel(x[0], x[1], x[2], x[3], x[4], H, W, K, skip); };
}
// The five inputs for (B,NH,M,HD) and a K window.
std::vector<In> ins(int64_t B, int64_t NH, int64_t M, int64_t HD, int64_t K) {
  return {In({B, NH, M, HD}), In({B, NH, M, HD}), In({B, NH, M, HD}), In({K, HD / 2}), In({K, HD / 2})};
}

}  // namespace

// The parity runs keep each row's grid (the op's H, W, K, skip) with more batches,
// heads and a wider head.
PW_OP_TEST(OpTest("local_attention_rel", ins(2, 2, 15, 4, 3), local(3, 5, 3, 0))
               .variant("3x5 grid, K 3, no class token")
               .parity(ins(3, 4, 15, 16, 3)));
PW_OP_TEST(OpTest("local_attention_rel", ins(1, 2, 16, 6, 5), local(3, 5, 5, 1))
               .variant("3x5 grid, K 5 (taller than the grid), class token")
               .parity(ins(2, 3, 16, 32, 5)));
PW_OP_TEST(OpTest("local_attention_rel", ins(2, 1, 8, 2, 7), local(2, 3, 7, 2))
               .variant("2x3 grid, K 7 (wider than the grid), two class tokens")
               .parity(ins(2, 2, 8, 8, 7)));
PW_OP_TEST(OpTest("local_attention_rel", ins(1, 1, 43, 4, 5), local(6, 7, 5, 1))
               .variant("6x7 grid, K 5, class token")
               .parity(ins(2, 4, 43, 16, 5)));

}  // namespace pw::test
