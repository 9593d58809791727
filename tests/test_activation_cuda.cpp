// CPU/CUDA parity of the activation family: forward and input gradient.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("activations match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"relu", {In({65, 129}, Domain::AwayFromZero)}, [](const X& x) { return relu(x[0]); }},
      {"gelu", {In({65, 129})}, [](const X& x) { return gelu(x[0]); }},
      {"gelu_tanh", {In({65, 129})}, [](const X& x) { return gelu_tanh(x[0]); }},
      {"silu", {In({65, 129})}, [](const X& x) { return silu(x[0]); }},
      {"sigmoid", {In({65, 129})}, [](const X& x) { return sigmoid(x[0]); }},
      {"tanh", {In({65, 129})}, [](const X& x) { return tanh(x[0]); }},
      {"hardswish", {In({65, 129})}, [](const X& x) { return hardswish(x[0] * 3.0); }},
      {"gelu large", {In({1024, 1031})}, [](const X& x) { return gelu(x[0]); }},
  });
}
