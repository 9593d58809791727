// softmax, log_softmax (kernels/softmax; their gradient, reference and parity rows are in
// tests/ops/softmax.cpp) and the classification losses (kernels/loss).
#include <omp.h>

#include <cmath>

#include "kernels/ops.h"
#include "kernels/softmax/softmax_math.h"
#include "tests/gradcheck.h"
#include "tests/reference.h"

using namespace pw;
using namespace pw::test;

using X = std::vector<Tensor>;

// The gradient checks, float32-vs-float64, CPU/CUDA parity and PyTorch values of
// softmax, log_softmax and the losses are test rows: tests/ops/softmax.cpp, tests/ops/loss.cpp.

TEST_CASE("exp_fast (the float exp of softmax and the losses) is within 2 ulp of exp") {
  double worst = 0;
  for (float x = -87.0f; x < 88.7f; x += 0.00137f) {
    double ref = std::exp((double)x), got = math::exp_fast(x);
    worst = std::max(worst, std::abs(got - ref) / ref);
  }
  CHECK(worst < 2 * 5.97e-8);  // 2 ulp of float's 2^-24 relative spacing
  CHECK(math::exp_fast(0.0f) == 1.0f);
  CHECK(math::exp_fast(-100.0f) == 0.0f);
  CHECK(math::exp_fast(-INFINITY) == 0.0f);
  CHECK(std::isinf(math::exp_fast(89.0f)));
  CHECK(std::isinf(math::exp_fast(INFINITY)));
  CHECK(std::isnan(math::exp_fast(NAN)));
  CHECK(std::isfinite(math::exp_fast(88.72f)));
}

TEST_CASE("softmax is stable and consistent in float32") {
  // Huge logits: exp would overflow without the max subtraction.
  Tensor x = from_vector({1000, 1001, 999, -1e30}, {1, 4}, DType::F32);
  auto y = softmax(x).to_vector();
  double e0 = std::exp(-1.0), e2 = std::exp(-2.0), z = e0 + 1 + e2;
  CHECK(y[0] == doctest::Approx(e0 / z).epsilon(1e-6));
  CHECK(y[1] == doctest::Approx(1 / z).epsilon(1e-6));
  CHECK(y[3] == 0.0);
  auto ly = log_softmax(x).to_vector();
  // NOTE: y = x - lse rounds at x's magnitude: float spacing near 1000 is 6e-5.
  CHECK(ly[1] == doctest::Approx(-std::log(z)).epsilon(2e-4));
  CHECK(std::isfinite(ly[0]));
  // cross entropy of a confident correct row is ~0, of a confident wrong row ~ the margin.
  Tensor logits = from_vector({500, 0, 0, 0, 500, 0}, {2, 3}, DType::F32);
  CHECK(cross_entropy(logits, from_indices({0, 1}, {2})).item() == doctest::Approx(0.0));
  CHECK(cross_entropy(logits, from_indices({1, 0}, {2})).item() == doctest::Approx(500.0));
  // Wide strided softmax (I > one column block) agrees with the contiguous path on the transpose.
  Tensor w = normal({7, 600}, 0, 3, DType::F64);
  auto wv = w.to_vector();
  std::vector<double> t(600 * 7);
  for (int r = 0; r < 7; ++r)
    for (int i = 0; i < 600; ++i) t[i * 7 + r] = wv[r * 600 + i];
  auto a = softmax(w, 0).to_vector();
  auto b = softmax(from_vector(t, {600, 7}, DType::F64), 1).to_vector();
  std::vector<double> bt(600 * 7);
  for (int r = 0; r < 7; ++r)
    for (int i = 0; i < 600; ++i) bt[r * 600 + i] = b[i * 7 + r];
  check_close(a, bt, 1e-15, 1e-12, "strided softmax");
}

TEST_CASE("float32 softmax, log_softmax and losses agree with float64") {
  Tensor x64 = normal({37, 203}, 0, 4, DType::F64), q64 = softmax(normal({37, 203}, 0, 1, DType::F64));
  Tensor x32 = x64.to(DType::F32), q32 = q64.to(DType::F32);
  Tensor t = from_indices(std::vector<int64_t>(37, 5), {37});
  check_close(softmax(x32).to_vector(), softmax(x64).to_vector(), 1e-7, 1e-5, "softmax");
  check_close(softmax(x32, 0).to_vector(), softmax(x64, 0).to_vector(), 1e-7, 1e-5, "softmax dim 0");
  check_close(log_softmax(x32).to_vector(), log_softmax(x64).to_vector(), 1e-5, 1e-5, "log_softmax");
  CHECK(cross_entropy(x32, t, 0.1).item() == doctest::Approx(cross_entropy(x64, t, 0.1).item()).epsilon(1e-5));
  CHECK(cross_entropy_soft(x32, q32).item() == doctest::Approx(cross_entropy_soft(x64, q64).item()).epsilon(1e-5));
  // Gradients too.
  Tensor a = x32.clone().requires_grad_(), b = x64.clone().requires_grad_();
  cross_entropy(a, t, 0.1).backward();
  cross_entropy(b, t, 0.1).backward();
  check_close(a.grad().to_vector(), b.grad().to_vector(), 1e-7, 1e-4, "cross_entropy grad");
}

TEST_CASE("softmax and cross entropy do not depend on the thread count") {
  Tensor x = normal({256, 1000}, 0, 2, DType::F32).requires_grad_();
  Tensor target = from_indices(std::vector<int64_t>(256, 3), {256});
  Tensor q = softmax(normal({256, 1000}, 0, 1, DType::F32));
  auto go = [&] {
    x.zero_grad();
    std::vector<double> out;
    Tensor l1 = cross_entropy(x, target, 0.1);
    l1.backward();
    out.push_back(l1.item());
    for (double v : x.grad().to_vector()) out.push_back(v);
    x.zero_grad();
    Tensor l2 = cross_entropy_soft(x, q);
    l2.backward();
    out.push_back(l2.item());
    for (double v : x.grad().to_vector()) out.push_back(v);
    for (double v : softmax(x, 0).to_vector()) out.push_back(v);
    return out;
  };
  int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  auto a = go();
  omp_set_num_threads(2);
  auto b = go();
  omp_set_num_threads(prev);
  CHECK(a == b);
}

TEST_CASE("softmax and loss bad inputs") {
  Tensor x = normal({2, 3}, 0, 1, DType::F64);
  CHECK_THROWS_WITH_AS(softmax(x, 2), doctest::Contains("softmax: dim 2 out of range"), pw::Error);
  CHECK_THROWS_WITH_AS(log_softmax(x, -3), doctest::Contains("log_softmax: dim -3"), pw::Error);
  CHECK_THROWS_WITH_AS(softmax(from_indices({1, 2}, {2})), doctest::Contains("softmax"), pw::Error);

  Tensor logits = normal({4, 5}, 0, 1, DType::F64);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_indices({0, 1, 5, 2}, {4})),
                       doctest::Contains("label 5 at position 2 is out of range for C = 5"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_indices({0, -1, 1, 2}, {4})),
                       doctest::Contains("label -1 at position 1"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_indices({0, 1, 2}, {3})),
                       doctest::Contains("cross_entropy: target i64[3] does not match logits f64[4,5]"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_vector({0, 1, 2, 3}, {4}, DType::F64)),
                       doctest::Contains("cross_entropy: target must hold I64"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(normal({2, 3, 4}, 0, 1, DType::F64), from_indices({0, 1}, {2})),
                       doctest::Contains("cross_entropy: expected logits of shape (B,C)"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_indices({0, 1, 2, 3}, {4}), 1.5),
                       doctest::Contains("label_smoothing"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({4, 0}, DType::F64), from_indices({0, 1, 2, 3}, {4})),
                       doctest::Contains("cross_entropy"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy_soft(logits, normal({4, 6}, 0, 1, DType::F64)),
                       doctest::Contains("cross_entropy_soft: target_probs f64[4,6]"), pw::Error);
  CHECK_THROWS_WITH_AS(cross_entropy_soft(logits, normal({4, 5}, 0, 1, DType::F32)),
                       doctest::Contains("cross_entropy_soft: dtype mismatch"), pw::Error);
}
