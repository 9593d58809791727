// Backward passes that write into fresh gradient buffers (Grads::out) or hand
// dy over without a copy (Grads::give) must give the same gradients as plain
// accumulation, whatever order the consumers of a tensor run in.
#include "kernels/ops.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

using X = const std::vector<Tensor>&;

TEST_CASE("gradients through fresh and handed-over buffers") {
  run_op_cases({
      {"x + x", {In({3, 5})}, [](X x) { return x[0] + x[0]; }},
      {"x - x * 3", {In({3, 5})}, [](X x) { return x[0] - x[0] * 3.0; }},
      {"(x + y) * x", {In({3, 5}), In({3, 5})}, [](X x) { return (x[0] + x[1]) * x[0]; }},
      {"x + broadcast y", {In({3, 5}), In({5})}, [](X x) { return (x[0] + x[1]) * x[0] - x[1]; }},
      {"reshape twice + x", {In({3, 5})}, [](X x) { return x[0].reshape({5, 3}).reshape({3, 5}) + x[0]; }},
      {"reshape shared", {In({3, 5})}, [](X x) { return x[0].reshape({15}) * x[0].reshape({15}); }},
      {"gelu(x) + gelu(x)", {In({3, 5})}, [](X x) { return gelu(x[0]) + gelu(x[0]); }},
      {"residual chain", {In({3, 5})},
       [](X x) {
         Tensor h = x[0] + gelu(x[0]);
         Tensor h2 = h + gelu(h);
         return h2 + h * 0.5;
       }},
      {"linear shared weight", {In({3, 4}), In({5, 4}), In({5})},
       [](X x) { return linear(x[0], x[1], x[2]) * linear(x[0] * 2.0, x[1], x[2]); }},
      {"layer_norm(x) * x", {In({3, 7}), In({7}), In({7})},
       [](X x) { return layer_norm(x[0], x[1], x[2]) * x[0] + layer_norm(x[0], x[1], x[2]); }},
  });
}

TEST_CASE("a handed-over gradient never aliases the caller's tensors") {
  Tensor x = normal({3, 5}, 0, 1, DType::F64).requires_grad_();
  Tensor u = normal({15}, 0, 1, DType::F64);
  x.reshape({15}).backward(u);
  auto before = x.grad().to_vector();
  CHECK(before == u.to_vector());
  u.data<double>()[0] += 1;  // the seed was copied: the gradient does not move
  CHECK(x.grad().to_vector() == before);
  // A second backward adds into the leaf's gradient without touching u.
  x.reshape({15}).backward(u);
  CHECK(x.grad().to_vector()[1] == 2 * before[1]);
  CHECK(u.to_vector()[1] == before[1]);
}
