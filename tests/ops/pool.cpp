// Test rows of the pooling family (tests/op_test.h). PyTorch values:
// tests/fixtures/pool.json (scripts/reference/pool.py), one row per fixture case.
#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

// Values with many exact ties (small integers), so the max-pool argmax tie rule
// (first in row-major window order) must agree between the backends.
In tied(Shape s) {
  int64_t n = 1;
  for (int64_t e : s) n *= e;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = double((i * 7 + i / 5) % 4);
  In in = In::fixed(std::move(s), std::move(v));
  in.grad = true;
  return in;
}

}  // namespace

// avg_pool2d
PW_OP_TEST(OpTest("avg_pool2d", {In({2, 3, 7, 9})}, [](X x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); })
               .variant("k3 s2 p1")
               .ref("pool", "avg2d_k3s2p1"));
PW_OP_TEST(OpTest("avg_pool2d", {In({2, 1, 5, 7})}, [](X x) { return avg_pool2d(x[0], {3, 2}, {1, 2}, {1, 0}); })
               .variant("k3x2 s1x2 p1x0")
               .ref("pool", "avg2d_k3x2_s1x2_p1x0"));
PW_OP_TEST(OpTest("avg_pool2d", {In({1, 2, 6, 8})}, [](X x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true); })
               .variant("k3 s2 p1 ceil")
               .ref("pool", "avg2d_ceil"));
PW_OP_TEST(OpTest("avg_pool2d", {In({1, 2, 6, 8})}, [](X x) { return avg_pool2d(x[0], {3, 2}, {2, 2}, {1, 1}, true); })
               .variant("k3x2 s2 p1 ceil"));
PW_OP_TEST(OpTest("avg_pool2d", {In({2, 1, 6, 7})},
                  [](X x) { return avg_pool2d(x[0], {3, 2}, {2, 2}, {1, 1}, true, false); })
               .variant("k3x2 s2 p1 ceil no-pad-count")
               .ref("pool", "avg2d_ceil_nopadcount"));
PW_OP_TEST(OpTest("avg_pool2d", {In({1, 2, 6, 7})},
                  [](X x) { return avg_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true, false); })
               .variant("k3 s2 p1 ceil no-pad-count"));
PW_OP_TEST(OpTest("avg_pool2d", {In({1, 2, 7, 8})},
                  [](X x) { return avg_pool2d(x[0], {3, 3}, {2, 3}, {1, 1}, false, false); })
               .variant("k3 s2x3 p1 no-pad-count")
               .ref("pool", "avg2d_nopadcount")
               .parity({In({2, 3, 9, 11})}));
PW_OP_TEST(OpTest("avg_pool2d", {In({1, 2, 5, 7})}, [](X x) { return avg_pool2d(x[0], {2, 2}, {2, 2}); })
               .variant("k2 s2")
               .ref("pool", "avg2d_k2s2")
               .parity({In({3, 5, 8, 6})}));
PW_OP_TEST(OpTest("avg_pool2d", {In({1, 2, 6, 5})}, [](X x) { return avg_pool2d(x[0], {5, 5}, {1, 1}, {2, 2}); })
               .variant("k5 s1 p2")
               .parity({In({4, 16, 33, 31})}));

// avg_pool1d
PW_OP_TEST(OpTest("avg_pool1d", {In({2, 3, 11})}, [](X x) { return avg_pool1d(x[0], 3, 2, 1); })
               .variant("k3 s2 p1")
               .ref("pool", "avg1d_k3s2p1"));
PW_OP_TEST(OpTest("avg_pool1d", {In({2, 3, 10})}, [](X x) { return avg_pool1d(x[0], 4, 3, 2, true, false); })
               .variant("k4 s3 p2 ceil no-pad-count")
               .ref("pool", "avg1d_ceil_nopadcount"));

// global_avg_pool2d; the large parity shape runs planes longer than a CUDA block
// (strided block loop), whose float sums run in a different order than the CPU's.
PW_OP_TEST(OpTest("global_avg_pool2d", {In({2, 3, 5, 7})}, [](X x) { return global_avg_pool2d(x[0]); })
               .ref("pool", "global_avg"));
PW_OP_TEST(OpTest("global_avg_pool2d", {In({2, 3, 5, 7})}, [](X x) { return global_avg_pool2d(x[0]); })
               .variant("large planes")
               .parity({In({3, 4, 50, 61})}));

// max_pool2d: distinct values keep the gradient check away from ties; the parity
// rows with ties check that both backends pick the same winner.
PW_OP_TEST(OpTest("max_pool2d", {In({2, 3, 7, 9}, Domain::Distinct)},
                  [](X x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); })
               .variant("k3 s2 p1")
               .ref("pool", "max2d_k3s2p1")
               .parity({In({4, 16, 33, 31})}));
PW_OP_TEST(OpTest("max_pool2d", {In({1, 2, 5, 7}, Domain::Distinct)},
                  [](X x) { return max_pool2d(x[0], {2, 2}, {2, 2}, {0, 0}, true); })
               .variant("k2 s2 ceil")
               .ref("pool", "max2d_k2s2_ceil"));
PW_OP_TEST(OpTest("max_pool2d", {In({1, 2, 5, 6}, Domain::Distinct)},
                  [](X x) { return max_pool2d(x[0], {3, 2}, {1, 1}, {1, 0}); })
               .variant("k3x2 s1 p1x0 (shared winners)")
               .ref("pool", "max2d_k3x2_s1_p1x0"));
PW_OP_TEST(OpTest("max_pool2d", {In({1, 2, 6, 7}, Domain::Distinct)},
                  [](X x) { return max_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}); })
               .variant("k3 s1 p1, ties in parity")
               .parity({tied({2, 3, 7, 9})}));
PW_OP_TEST(OpTest("max_pool2d", {In({1, 2, 8, 7}, Domain::Distinct)},
                  [](X x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}, true); })
               .variant("k3 s2 p1 ceil, ties in parity")
               .parity({tied({1, 2, 8, 7})}));

}  // namespace pw::test
