// CPU/CUDA parity of the index ops (embedding, index_select, gather), forward
// and the deterministic scatter-add backward (repeated indices included).
#include "kernels/ops.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;
using X = std::vector<Tensor>;

static In idx(Shape s, std::vector<double> v) { return In::fixed(std::move(s), std::move(v), DType::I64); }

TEST_CASE("embedding, index_select and gather match the cpu") {
  PW_SKIP_WITHOUT_CUDA();
  run_parity_cases({
      {"embedding", {In({7, 3}), idx({2, 5}, {4, 0, 4, 6, 4, 1, 4, 6, 2, 0})},
       [](const X& x) { return embedding(x[0], x[1]); }},
      {"embedding random", {In({50, 33}), In::index({9, 70}, 50)}, [](const X& x) { return embedding(x[0], x[1]); }},
      {"index_select mid", {In({3, 5, 3}), idx({7}, {4, 0, 4, 2, 4, 0, 1})},
       [](const X& x) { return index_select(x[0], 1, x[1]); }},
      {"index_select first", {In({5, 3}), idx({4}, {3, 3, 1, 3})}, [](const X& x) { return index_select(x[0], 0, x[1]); }},
      {"index_select last", {In({3, 5}), idx({3}, {2, 2, 2})}, [](const X& x) { return index_select(x[0], -1, x[1]); }},
      {"gather mid", {In({3, 5, 3}), In::index({3, 7, 3}, 5)}, [](const X& x) { return gather(x[0], 1, x[1]); }},
      {"gather smaller idx", {In({3, 5, 7}), idx({2, 3, 3}, {0, 4, 1, 1, 1, 4, 3, 2, 1, 0, 0, 0, 4, 4, 4, 2, 3, 2})},
       [](const X& x) { return gather(x[0], 1, x[1]); }},
      {"gather last", {In({3, 5}), In::index({3, 9}, 5)}, [](const X& x) { return gather(x[0], -1, x[1]); }},
      {"gather first", {In({5, 3}), In::index({9, 3}, 5)}, [](const X& x) { return gather(x[0], 0, x[1]); }},
  });
}

TEST_CASE("index ops on cuda reject bad indices and mixed devices") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor w = normal({5, 3}, 0, 1).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(embedding(w, from_indices({0, 5}, {2}).to(Device::CUDA)), doctest::Contains("embedding"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(embedding(w, from_indices({0, 1}, {2})), doctest::Contains("embedding"), pw::Error);
  CHECK_THROWS_WITH_AS(gather(w, 0, from_indices({0, 9}, {2, 1}).to(Device::CUDA)), doctest::Contains("gather"),
                       pw::Error);
}
