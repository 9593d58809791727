// Test rows of the dropout family (tests/op_test.h). Each call draws from a fresh
// Generator(seed), so the gradient check's repeated forwards, the float32 and
// float64 runs, and the CPU and CUDA runs all see one mask; the CUDA masks come
// from the same Philox counters, so parity is exact (atol = rtol = 0).
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

PW_OP_TEST(OpTest("dropout", {In({3, 5, 7})}, [](X x) { Generator g(11); return dropout(x[0], 0.3, true, &g); })
               .variant("p 0.3")
               .parity_tol(0, 0));
PW_OP_TEST(OpTest("dropout", {In({5, 7})}, [](X x) { Generator g(12); return dropout(x[0], 0.8, true, &g); })
               .variant("p 0.8")
               .parity_tol(0, 0));
PW_OP_TEST(OpTest("dropout", {In({5, 13})},
                  [](X x) {
                    Generator g(7);
                    g.offset = 11;
                    return dropout(x[0], 0.3, true, &g);
                  })
               .variant("p 0.3, generator offset")
               .parity({In({37, 65})})
               .parity_tol(0, 0));
PW_OP_TEST(OpTest("dropout", {In({1001})}, [](X x) { Generator g(3); return dropout(x[0], 0.5, true, &g); })
               .variant("odd tail")
               .parity_tol(0, 0));
PW_OP_TEST(OpTest("dropout", {In({5, 7})}, [](X x) { Generator g(3); return dropout(x[0], 1.0, true, &g); })
               .variant("p 1")
               .parity_tol(0, 0));

PW_OP_TEST(OpTest("drop_path", {In({9, 5, 3})}, [](X x) { Generator g(13); return drop_path(x[0], 0.4, true, &g); })
               .variant("p 0.4")
               .parity_tol(0, 0));
PW_OP_TEST(OpTest("drop_path", {In({9, 5, 7})}, [](X x) { Generator g(5); return drop_path(x[0], 0.4, true, &g); })
               .variant("p 0.4, seed 5")
               .parity_tol(0, 0));

}  // namespace pw::test
