// CPU/CUDA parity of the elementwise family: forward and every input gradient.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("elementwise: binary ops with broadcasting match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"add same", {In({64, 33}), In({64, 33})}, [](const X& x) { return x[0] + x[1]; }},
      {"add bcast", {In({4, 1, 33}), In({5, 33})}, [](const X& x) { return x[0] + x[1]; }},
      {"add 0-d", {In({7, 9}), In({})}, [](const X& x) { return x[0] + x[1]; }},
      {"add large", {In({1000, 257}), In({257})}, [](const X& x) { return x[0] + x[1]; }},
      {"add b no grad", {In({6, 5}), In({5}).no_grad()}, [](const X& x) { return x[0] + x[1]; }},
      {"sub bcast", {In({7, 1}), In({1, 9})}, [](const X& x) { return x[0] - x[1]; }},
      {"sub same", {In({3, 5, 7}), In({3, 5, 7})}, [](const X& x) { return x[0] - x[1]; }},
      {"mul same", {In({64, 33}), In({64, 33})}, [](const X& x) { return x[0] * x[1]; }},
      {"mul bcast", {In({2, 3, 5, 7}), In({3, 1, 7})}, [](const X& x) { return x[0] * x[1]; }},
      {"mul scale", {In({8, 16, 24}), In({24})}, [](const X& x) { return x[0] * x[1]; }},
      {"mul self", {In({5, 7})}, [](const X& x) { return x[0] * x[0]; }},
      {"div same", {In({64, 33}), In({64, 33}, Domain::Positive)}, [](const X& x) { return x[0] / x[1]; }},
      {"div bcast", {In({4, 1, 33}), In({5, 33}, Domain::Positive)}, [](const X& x) { return x[0] / x[1]; }},
  });
}

TEST_CASE("elementwise: scalar and unary ops match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"add scalar", {In({33, 65})}, [](const X& x) { return x[0] + 2.5; }},
      {"sub scalar", {In({33, 65})}, [](const X& x) { return x[0] - 1.25; }},
      {"rsub scalar", {In({33, 65})}, [](const X& x) { return 2.0 - x[0]; }},
      {"mul scalar", {In({33, 65})}, [](const X& x) { return x[0] * 1.7; }},
      {"div scalar", {In({33, 65})}, [](const X& x) { return x[0] / 3.0; }},
      {"rdiv scalar", {In({33, 65}, Domain::AwayFromZero)}, [](const X& x) { return 3.0 / x[0]; }},
      {"neg", {In({33, 65})}, [](const X& x) { return -x[0]; }},
      {"exp", {In({33, 65})}, [](const X& x) { return exp(x[0]); }},
      {"log", {In({33, 65}, Domain::Positive)}, [](const X& x) { return log(x[0]); }},
      {"sqrt", {In({33, 65}, Domain::Positive)}, [](const X& x) { return sqrt(x[0]); }},
      {"rsqrt", {In({33, 65}, Domain::Positive)}, [](const X& x) { return rsqrt(x[0]); }},
      {"abs", {In({33, 65}, Domain::AwayFromZero)}, [](const X& x) { return abs(x[0]); }},
      {"pow 2.5", {In({33, 65}, Domain::Positive)}, [](const X& x) { return pow(x[0], 2.5); }},
      {"pow 0", {In({33, 65}, Domain::Positive)}, [](const X& x) { return pow(x[0], 0.0); }},
      {"clamp", {In({33, 65})}, [](const X& x) { return clamp(x[0], -0.5, 0.7); }},
      {"large chain", {In({513, 1031})}, [](const X& x) { return exp(x[0] * 0.5) - x[0]; }},
  });
}

TEST_CASE("elementwise: where and masked_fill match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"where", {In::index({5, 7}, 2), In({5, 7}), In({5, 7})}, [](const X& x) { return where(x[0], x[1], x[2]); }},
      {"where bcast", {In::index({5, 1}, 2), In({1, 7}), In({5, 7})},
       [](const X& x) { return where(x[0], x[1], x[2]); }},
      {"masked_fill", {In({4, 6, 9}), In::index({6, 1}, 2)}, [](const X& x) { return masked_fill(x[0], x[1], -3.5); }},
  });
}

TEST_CASE("elementwise: inputs on different devices are an error naming the op") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = ones({3});
  Tensor b = ones({3}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add"), pw::Error);
  CHECK_THROWS_WITH_AS(mul(b, a), doctest::Contains("different devices"), pw::Error);
}
