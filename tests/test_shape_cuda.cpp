// CPU/CUDA parity of the shape ops (all run through one strided-copy kernel):
// forward and gradient, i64 copies, and the reduction backward of expand/repeat.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

TEST_CASE("shape ops match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"permute", {In({3, 5, 7, 2})}, [](const X& x) { return permute(x[0], {2, 0, 3, 1}); }},
      {"transpose large", {In({67, 129})}, [](const X& x) { return transpose(x[0], 0, 1); }},
      {"concat", {In({3, 5, 2}), In({3, 4, 2}), In({3, 1, 2})}, [](const X& x) { return concat(x, 1); }},
      // Pieces reassembled out of order: every piece's backward lands in its own part of dx.
      {"split", {In({3, 9, 2})}, [](const X& x) { auto p = split(x[0], {2, 3, 4}, 1); return concat({p[2], p[0], p[1]}, 1); }},
      {"chunk", {In({7, 5})}, [](const X& x) { auto p = chunk(x[0], 3, 0); return concat({p[2], p[0]}, 0); }},
      {"narrow", {In({4, 9, 3})}, [](const X& x) { return narrow(x[0], 1, -6, 4); }},
      {"slice step", {In({5, 11})}, [](const X& x) { return slice(x[0], 1, 1, -1, 3); }},
      {"pad", {In({3, 4, 5})}, [](const X& x) { return pad(x[0], {1, 2, -1, 3}, 0.5); }},
      {"roll", {In({4, 5, 6})}, [](const X& x) { return roll(x[0], {2, -1}, {0, 2}); }},
      {"roll flat", {In({4, 5})}, [](const X& x) { return roll(x[0], {7}, {}); }},
      {"repeat", {In({3, 1, 4})}, [](const X& x) { return repeat(x[0], {2, 2, 5, 3}); }},
      {"expand", {In({3, 1, 4})}, [](const X& x) { return expand(x[0], {2, 3, 6, 4}); }},
      {"expand large", {In({1, 384})}, [](const X& x) { return expand(x[0], {1000, 384}); }, 1e-4, 1e-4},
      {"unsqueeze squeeze flatten", {In({3, 4, 5})},
       [](const X& x) { return flatten(squeeze(unsqueeze(permute(x[0], {1, 0, 2}), 1), 1), 1); }},
  });
}

TEST_CASE("shape ops copy i64 tensors on cuda") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = from_indices({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor g = a.to(Device::CUDA);
  CHECK(permute(g, {1, 0}).to_vector() == permute(a, {1, 0}).to_vector());
  CHECK(concat({g, g}, 0).to_vector() == concat({a, a}, 0).to_vector());
  CHECK(pad(g, {1, 1}, 7).to_vector() == pad(a, {1, 1}, 7).to_vector());
  CHECK(expand(g.reshape({2, 1, 3}), {2, 4, 3}).to_vector() == expand(a.reshape({2, 1, 3}), {2, 4, 3}).to_vector());
}

TEST_CASE("concat rejects mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = normal({2, 3}, 0, 1);
  CHECK_THROWS_WITH_AS(concat({a, a.to(Device::CUDA)}, 0), doctest::Contains("concat"), pw::Error);
}
