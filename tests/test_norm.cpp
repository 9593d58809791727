// layer_norm and batch_norm (kernels/norm).
#include <omp.h>

#include "kernels/ops.h"
#include "tests/gradcheck.h"
#include "tests/reference.h"

using namespace pw;
using namespace pw::test;

using X = std::vector<Tensor>;

// The gradient checks, float32-vs-float64, CPU/CUDA parity and the PyTorch values of
// y and the gradients are test rows: tests/ops/norm.cpp.

TEST_CASE("batch_norm running statistics match PyTorch") {
  auto cases = load_reference("norm");
  // Running statistics after one training step: output = concat(running_mean, running_var).
  auto running = [](double momentum) {
    return [=](const X& x) {
      Tensor rm = x[3].detach().clone(), rv = x[4].detach().clone();
      batch_norm(x[0], x[1], x[2], rm, rv, true, momentum);
      std::vector<double> v = rm.to_vector(), w = rv.to_vector();
      v.insert(v.end(), w.begin(), w.end());
      return from_vector(v, {(int64_t)v.size()}, DType::F64);
    };
  };
  SUBCASE("batch_norm_running_4d") { check_reference(cases.at("batch_norm_running_4d"), running(0.1)); }
  SUBCASE("batch_norm_running_3d_m0.3") { check_reference(cases.at("batch_norm_running_3d_m0.3"), running(0.3)); }
}

TEST_CASE("batch_norm running statistics and modes") {
  // Channel 0 holds {1,2,3,4}, channel 1 holds {10,10,10,10}: batch mean 2.5 / 10,
  // biased var 1.25 / 0, unbiased 5/3 / 0.
  Tensor x = from_vector({1, 10, 2, 10, 3, 10, 4, 10}, {4, 2}, DType::F64);
  Tensor rm = from_vector({0.5, -1}, {2}, DType::F64), rv = from_vector({2, 3}, {2}, DType::F64);
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.25);
  auto m = rm.to_vector(), v = rv.to_vector();
  CHECK(m[0] == doctest::Approx(0.75 * 0.5 + 0.25 * 2.5));
  CHECK(m[1] == doctest::Approx(0.75 * -1 + 0.25 * 10));
  CHECK(v[0] == doctest::Approx(0.75 * 2 + 0.25 * 5.0 / 3.0));
  CHECK(v[1] == doctest::Approx(0.75 * 3));
  CHECK(y.to_vector()[0] == doctest::Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
  CHECK(y.to_vector()[1] == 0.0);
  // Eval uses (and leaves alone) the running statistics.
  auto before = rm.to_vector();
  Tensor ye = batch_norm(x, Tensor(), Tensor(), rm, rv, false);
  CHECK(rm.to_vector() == before);
  CHECK(ye.to_vector()[0] == doctest::Approx((1 - m[0]) / std::sqrt(v[0] + 1e-5)));
  // Training without running statistics is allowed (track_running_stats=False).
  CHECK(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true).shape() == x.shape());
}

TEST_CASE("layer_norm and batch_norm in float32 do not depend on the thread count") {
  Tensor x = normal({512, 96}, 1, 2, DType::F32).requires_grad_();
  Tensor w = normal({96}, 1, 0.1, DType::F32).requires_grad_(), b = normal({96}, 0, 0.1, DType::F32).requires_grad_();
  Tensor xi = normal({16, 8, 24, 24}, 1, 2, DType::F32).requires_grad_();
  Tensor wi = normal({8}, 1, 0.1, DType::F32).requires_grad_(), bi = normal({8}, 0, 0.1, DType::F32).requires_grad_();
  Tensor u = normal({512, 96}, 0, 1, DType::F32), ui = normal({16, 8, 24, 24}, 0, 1, DType::F32);
  auto go = [&] {
    for (Tensor* t : {&x, &w, &b, &xi, &wi, &bi}) t->zero_grad();
    std::vector<double> out;
    Tensor y = layer_norm(x, w, b);
    y.backward(u);
    Tensor rm = zeros({8}), rv = ones({8});
    Tensor yi = batch_norm(xi, wi, bi, rm, rv, true);
    yi.backward(ui);
    for (const Tensor& t : {y, x.grad(), w.grad(), b.grad(), yi, xi.grad(), wi.grad(), bi.grad(), rm, rv})
      for (double v : t.to_vector()) out.push_back(v);
    return out;
  };
  int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  auto a = go();
  omp_set_num_threads(2);
  auto c = go();
  omp_set_num_threads(prev);
  CHECK(a == c);
  // And float32 agrees with float64 to float precision.
  Tensor y32 = layer_norm(x.detach(), w.detach(), b.detach());
  Tensor y64 = layer_norm(x.detach().to(DType::F64), w.detach().to(DType::F64), b.detach().to(DType::F64));
  check_close(y32.to_vector(), y64.to_vector(), 1e-5, 1e-5, "layer_norm f32 vs f64");
}

TEST_CASE("norm bad inputs") {
  Tensor x = normal({4, 6}, 0, 1, DType::F64);
  Tensor w6 = ones({6}, DType::F64), w5 = ones({5}, DType::F64);
  CHECK_THROWS_WITH_AS(layer_norm(x, w5, Tensor()), doctest::Contains("layer_norm: weight f64[5] must have shape (C) = [6]"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, w6, ones({6}, DType::F32)), doctest::Contains("layer_norm: dtype mismatch"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(layer_norm(full({}, 1.0, DType::F64), Tensor(), Tensor()), doctest::Contains("layer_norm"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(layer_norm(from_indices({1, 2}, {1, 2}), Tensor(), Tensor()), doctest::Contains("layer_norm"),
                       pw::Error);

  Tensor rm = zeros({6}, DType::F64), rv = ones({6}, DType::F64);
  CHECK_THROWS_WITH_AS(batch_norm(normal({2, 6, 2, 2, 2}, 0, 1, DType::F64), w6, w6, rm, rv, true),
                       doctest::Contains("batch_norm: expected an input of shape (B,C), (B,C,L) or (B,C,H,W)"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, w5, Tensor(), rm, rv, true), doctest::Contains("batch_norm: weight f64[5]"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, w6, w6, zeros({4}, DType::F64), rv, true),
                       doctest::Contains("batch_norm: running_mean f64[4]"), pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, w6, w6, Tensor(), Tensor(), false), doctest::Contains("batch_norm: eval mode"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, w6, w6, rm, Tensor(), true), doctest::Contains("batch_norm: running_mean and running_var"),
                       pw::Error);
  CHECK_THROWS_WITH_AS(batch_norm(normal({1, 6}, 0, 1, DType::F64), w6, w6, rm, rv, true),
                       doctest::Contains("batch_norm: training needs more than 1 value per channel"), pw::Error);
}

// SyncBN's combination of per-channel (count, mean, M2) over processes (kernels/norm/norm.h):
// the parts of a set split unevenly give the whole set's statistics, whatever the split.
TEST_CASE("combine_moments of a split set equals the whole set's moments") {
  std::vector<double> v;
  for (int i = 0; i < 37; ++i) v.push_back(100.0 + std::sin(0.7 * i) * 3 + 0.01 * i);  // a large mean
  auto moments = [&](size_t a, size_t b) {
    double m = 0, ss = 0;
    for (size_t i = a; i < b; ++i) m += v[i];
    m /= (double)(b - a);
    for (size_t i = a; i < b; ++i) ss += (v[i] - m) * (v[i] - m);
    return std::vector<double>{(double)(b - a), m, ss};
  };
  const std::vector<double> whole = moments(0, v.size());
  for (std::vector<size_t> cuts : {std::vector<size_t>{0, 5, 37}, {0, 1, 20, 36, 37}, {0, 37}}) {
    std::vector<std::vector<double>> parts;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) parts.push_back(moments(cuts[k], cuts[k + 1]));
    std::vector<double> got = combine_moments(parts);
    CHECK(got[0] == whole[0]);
    CHECK(got[1] == doctest::Approx(whole[1]).epsilon(1e-14));
    CHECK(got[2] == doctest::Approx(whole[2]).epsilon(1e-11));
  }
  // An empty part changes nothing; parts of another channel count are refused.
  CHECK(combine_moments({whole, {0, 0, 0}}) == whole);
  CHECK_THROWS_AS(combine_moments({whole, {1, 2, 3, 4, 5, 6}}), pw::Error);
}
