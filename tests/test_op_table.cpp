// The op table end to end with a throwaway op that exists only in this file:
// one dispatch row and one test row are all it takes for its gradient check,
// its dispatch and the error for a missing backend to work, and an op with a
// dispatch row but no test row is caught by the coverage check.
#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/ops.h"
#include "tests/op_test.h"

using namespace pw;
using namespace pw::test;

namespace {

// y = x^3.   x, y: any shape (one CPU kernel pair, no CUDA)
void cube_forward_cpu(Tensor& y, const Tensor& x) {
  dispatch_float(x.dtype(), "pw_test_cube", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] * px[i] * px[i];
  });
}
// dx (+)= 3 x^2 dy
void cube_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& dy) {
  dispatch_float(x.dtype(), "pw_test_cube", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const T g = T(3) * px[i] * px[i] * pdy[i];
      pdx[i] = dx.accumulate ? pdx[i] + g : g;
    }
  });
}
using CubeFwd = void(Tensor& y, const Tensor& x);
using CubeBwd = void(GradBuf dx, const Tensor& x, const Tensor& dy);
PW_OP_ROW(kCube, "pw_test_cube", "test", CubeFwd, CubeBwd, cube_forward_cpu, nullptr, cube_backward_cpu, nullptr);

struct CubeFn final : Node {
  Tensor x;
  const char* name() const override { return "pw_test_cube"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kCube.bwd(dy.device())(g.buf(0), x, dy);
  }
};
Tensor cube(const Tensor& x) {
  Tensor y = empty_like(x);
  kCube.fwd(x.device())(y, x);
  if (auto n = record<CubeFn>(y, {x})) n->x = x;
  return y;
}

// The one test row of the throwaway op.
PW_OP_TEST(OpTest("pw_test_cube", {In({3, 7})}, [](X x) { return cube(x[0]); }));

// A second throwaway op with a dispatch row and, on purpose, no test row.
PW_OP_ROW(kUntested, "pw_test_untested", "test", CubeFwd, CubeBwd, cube_forward_cpu, nullptr, cube_backward_cpu,
          nullptr);

const OpTest& cube_row() {
  for (const OpTest& t : op_tests())
    if (t.op == "pw_test_cube") return t;
  throw std::runtime_error("no test row for pw_test_cube");
}

}  // namespace

TEST_CASE("a throwaway op's test row drives its gradient check and float32 check") {
  check_gradients(cube_row());
  check_f32_vs_f64(cube_row());
}

TEST_CASE("the row dispatches on the device and names op and device where a backend is missing") {
  const OpInfo* info = find_op("pw_test_cube");
  REQUIRE(info != nullptr);
  CHECK(std::string(info->family) == "test");
  CHECK(info->fwd[(int)Device::CPU]);
  CHECK(!info->fwd[(int)Device::CUDA]);
  Tensor x = from_vector({1.5, -2.0}, {2}, DType::F64);
  CHECK(cube(x).to_vector() == std::vector<double>{3.375, -8.0});
  CHECK_THROWS_WITH_AS(kCube.fwd(Device::CUDA), doctest::Contains("pw_test_cube"), pw::Error);
  CHECK_THROWS_WITH_AS(kCube.bwd(Device::CUDA), doctest::Contains("pw_test_cube"), pw::Error);
#if defined(PW_HAVE_CUDA)
  CHECK_THROWS_WITH_AS(kCube.bwd(Device::CUDA), doctest::Contains("no cuda backward kernel"), pw::Error);
#endif
}

TEST_CASE("an op with a dispatch row and no test row fails the coverage check, by name") {
  const auto problems = coverage_problems(op_tests());
  REQUIRE(problems.size() == 1);  // every library op and pw_test_cube have rows; the untested one doesn't
  CHECK(problems[0].find("pw_test_untested") != std::string::npos);
  CHECK(problems[0].find("no test row") != std::string::npos);
}

TEST_CASE("two dispatch rows with one name are refused") {
  CHECK_THROWS_WITH_AS((OpRow<CubeFwd, CubeBwd>("pw_test_cube", "test", cube_forward_cpu, nullptr,
                                                 cube_backward_cpu, nullptr)),
                       doctest::Contains("two rows are named 'pw_test_cube'"), pw::Error);
}
