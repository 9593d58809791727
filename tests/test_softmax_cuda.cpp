// CPU/CUDA parity of softmax and log_softmax over any dim, forward and gradient.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("softmax and log_softmax match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"softmax last", {In({3, 5, 7})}, [](const X& x) { return softmax(x[0]); }},
      {"softmax middle", {In({3, 5, 7})}, [](const X& x) { return softmax(x[0], 1); }},
      {"softmax first", {In({3, 5, 7})}, [](const X& x) { return softmax(x[0], 0); }},
      {"softmax long rows", {In({17, 3001})}, [](const X& x) { return softmax(x[0] * 4.0, -1); }},
      {"softmax 1-d", {In({300})}, [](const X& x) { return softmax(x[0], 0); }},
      {"softmax 0-d", {In({})}, [](const X& x) { return softmax(x[0], 0); }},
      {"log_softmax last", {In({3, 5, 7})}, [](const X& x) { return log_softmax(x[0]); }},
      {"log_softmax middle", {In({3, 5, 7})}, [](const X& x) { return log_softmax(x[0], -2); }},
      {"log_softmax long rows", {In({9, 1025})}, [](const X& x) { return log_softmax(x[0] * 4.0); }},
      {"log_softmax strided long", {In({2, 600, 33})}, [](const X& x) { return log_softmax(x[0], 1); }},
  });
}
