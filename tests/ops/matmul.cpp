// Test rows of the matmul family (tests/op_test.h): matmul, linear, linear_gelu.
// PyTorch values: tests/fixtures/matmul.json (scripts/reference/matmul.py).
// Parity runs at the default float32 matmul precision; tf32 and bf16 parity stay
// in tests/test_matmul_cuda.cpp. NOTE: cuBLAS and oneDNN sum the K products in
// different orders, hence parity tolerance 1e-4 (K <= 2100 here).
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {
Tensor mm(X x) { return matmul(x[0], x[1]); }
}  // namespace

PW_OP_TEST(OpTest("matmul", {In({3, 5}), In({5, 7})}, mm)
               .variant("2d")
               .parity({In({65, 47}), In({47, 33})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({2, 1, 3, 4}), In({5, 4, 3})}, mm)
               .variant("general broadcast")
               .ref("matmul", "matmul_broadcast")
               .parity({In({2, 1, 7, 12}), In({3, 12, 5})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({2, 3, 4, 5}), In({3, 5, 2})}, mm)
               .variant("b repeated over a's leading dim")  // XL: (B,NH,M,HD) @ (NH,HD,2M-1)
               .parity({In({3, 4, 9, 16}), In({4, 16, 17})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({2, 3, 4, 5}), In({2, 1, 5, 2})}, mm)
               .variant("b repeated over a's inner dim")  // no strided-batched form: one GEMM per slice
               .parity({In({2, 3, 9, 16}), In({2, 1, 16, 7})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({2, 3, 5}), In({5, 3})}, mm)
               .variant("batched a, 2-d b")
               .ref("matmul", "matmul_b2d")
               .parity({In({3, 17, 40}), In({40, 24})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({3, 5}), In({2, 5, 3})}, mm)
               .variant("2-d a, batched b")
               .ref("matmul", "matmul_a2d")
               .parity({In({17, 40}), In({3, 40, 24})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({3, 3, 5}), In({3, 5, 2})}, mm)
               .variant("same batch")
               .ref("matmul", "matmul_same_batch")
               .parity({In({2, 3, 17, 33}), In({2, 3, 33, 9})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({3, 1, 5}), In({1, 5, 2})}, mm)
               .variant("b broadcast over a")
               .parity({In({3, 1, 9, 16}), In({1, 4, 16, 7})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({5}), In({3, 5, 2})}, mm)
               .variant("vec @ batched")
               .ref("matmul", "matmul_vec_mat")
               .parity({In({20}), In({3, 20, 6})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("matmul", {In({3, 5}), In({5})}, mm)
               .variant("mat @ vec")
               .ref("matmul", "matmul_mat_vec")
               .parity({In({13, 20}), In({20})})
               .parity_tol(1e-4, 1e-4));

PW_OP_TEST(OpTest("linear", {In({2, 3, 5}), In({7, 5}), In({7})}, [](X x) { return linear(x[0], x[1], x[2]); })
               .variant("bias")
               .ref("matmul", "linear_bias")
               .parity({In({4, 31, 48}), In({40, 48}), In({40})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("linear", {In({3, 5}), In({7, 5})}, [](X x) { return linear(x[0], x[1]); })
               .variant("no bias")
               .ref("matmul", "linear_nobias")
               .parity({In({33, 21}), In({17, 21})})
               .parity_tol(1e-4, 1e-4));
// 2100 rows: the bias gradient's column sum spans three row chunks on CUDA.
PW_OP_TEST(OpTest("linear", {In({6, 4}), In({3, 4}), In({3})}, [](X x) { return linear(x[0], x[1], x[2]); })
               .variant("many rows")
               .parity({In({2100, 24}), In({16, 24}), In({16})})
               .parity_tol(1e-4, 1e-4));

// Dout % 8 == 0: the cuBLASLt epilogue path on CUDA; Dout = 17: the unfused fallback.
PW_OP_TEST(OpTest("linear_gelu", {In({2, 3, 5}), In({8, 5}), In({8})},
                  [](X x) { return linear_gelu(x[0], x[1], x[2]); })
               .variant("fused shape")
               .parity({In({2, 37, 64}), In({96, 64}), In({96})})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("linear_gelu", {In({2, 3, 5}), In({7, 5}), In({7})},
                  [](X x) { return linear_gelu(x[0], x[1], x[2]); })
               .variant("unfused shape")
               .parity({In({29, 20}), In({17, 20}), In({17})})
               .parity_tol(1e-4, 1e-4));

}  // namespace pw::test
