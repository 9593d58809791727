// The GEMM engines against a triple loop, and matmul/linear properties: float32
// against float64 at realistic shapes, bad input. Gradient checks, PyTorch values
// and CPU/CUDA parity are test rows (tests/ops/matmul.cpp).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/ops.h"
#include "kernels/gemm/gemm.h"
#include "tests/gradcheck.h"

using namespace pw;
using namespace pw::test;

namespace {

template <class T>
std::vector<T> randn_vec(int64_t n) {
  std::normal_distribution<double> nd(0, 1);
  std::vector<T> v(n);
  for (auto& e : v) e = (T)nd(test_rng());
  return v;
}

// C (M,N) = alpha op(A) op(B) + beta C, the textbook triple loop in double.
template <class T>
std::vector<double> naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const std::vector<T>& A,
                               int64_t lda, const std::vector<T>& B, int64_t ldb, double beta, const std::vector<T>& C,
                               int64_t ldc) {
  std::vector<double> out(C.begin(), C.end());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
      out[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * (double)C[i * ldc + j]);
    }
  return out;
}

// One GEMM with padded leading dimensions against naive_gemm.
template <class T>
void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, double beta, double tol) {
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
  auto A = randn_vec<T>((ta ? K : M) * lda), B = randn_vec<T>((tb ? N : K) * ldb), C = randn_vec<T>(M * ldc);
  auto ref = naive_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (beta == 0) std::fill(C.begin(), C.end(), std::numeric_limits<T>::quiet_NaN());  // must be ignored
  const auto C0 = C;
  gemm(ta, tb, M, N, K, (T)alpha, A.data(), lda, B.data(), ldb, (T)beta, C.data(), ldc);
  std::vector<double> got, want;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      got.push_back(C[i * ldc + j]);
      want.push_back(ref[i * ldc + j]);
    }
    for (int64_t j = N; j < ldc; ++j)  // the padding columns of C are never written
      CHECK(std::memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(T)) == 0);
  }
  check_close(got, want, tol * std::sqrt((double)K + 1), tol, "gemm");
}

}  // namespace

TEST_CASE("gemm matches the triple loop, all transposes, float and double") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      // odd sizes that cross the double kernel's 64 x 256 x 128 blocks
      check_gemm<double>(ta, tb, 67, 301, 135, 0.7, -0.3, 1e-12);
      check_gemm<double>(ta, tb, 5, 3, 7, 1.0, 0.0, 1e-12);
      check_gemm<float>(ta, tb, 67, 301, 135, 0.7, -0.3, 1e-5);
      check_gemm<float>(ta, tb, 5, 3, 7, 1.0, 0.0, 1e-5);
    }
  check_gemm<float>(false, false, 4, 6, 0, 1.0, 0.5, 1e-6);  // K = 0: C = beta*C
  check_gemm<double>(false, false, 4, 6, 0, 1.0, 0.0, 1e-12);
  check_gemm<float>(false, true, 1, 1, 1, 2.0, 1.0, 1e-6);
}

TEST_CASE("gemm_batched equals one gemm per batch entry, with a broadcast operand") {
  for (int64_t batch : {1, 3, 64}) {
    CAPTURE(batch);
    const int64_t M = 9, N = 11, K = 13;
    auto A = randn_vec<float>(batch * M * K), B = randn_vec<float>(K * N), C = randn_vec<float>(batch * M * N);
    auto C2 = C;
    gemm_strided_batched(false, true, batch, M, N, K, 0.5f, A.data(), K, M * K, B.data(), K, 0, 1.f, C.data(), N,
                         M * N);
    for (int64_t i = 0; i < batch; ++i)
      gemm(false, true, M, N, K, 0.5f, &A[i * M * K], K, B.data(), K, 1.f, &C2[i * M * N], N);
    CHECK(C == C2);  // same kernels, single call each: bitwise equal
    auto Ad = randn_vec<double>(batch * M * K), Bd = randn_vec<double>(batch * K * N), Cd = randn_vec<double>(batch * M * N);
    auto Cd2 = Cd;
    gemm_strided_batched(true, false, batch, M, N, K, 1.0, Ad.data(), M, M * K, Bd.data(), N, K * N, 0.0, Cd.data(),
                         N, M * N);
    for (int64_t i = 0; i < batch; ++i)
      gemm(true, false, M, N, K, 1.0, &Ad[i * M * K], M, &Bd[i * K * N], N, 0.0, &Cd2[i * M * N], N);
    CHECK(Cd == Cd2);
  }
}

TEST_CASE("gemm rejects bad sizes") {
  std::vector<float> a(16), b(16), c(16);
  CHECK_THROWS_WITH_AS(gemm(false, false, -1, 2, 2, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2),
                       doctest::Contains("gemm"), pw::Error);
  CHECK_THROWS_WITH_AS(gemm(false, false, 2, 4, 4, 1.f, a.data(), 3, b.data(), 4, 0.f, c.data(), 4),
                       doctest::Contains("leading dimensions"), pw::Error);
}

TEST_CASE("linear_gelu is gelu_tanh(linear) on the cpu") {
  std::vector<Tensor> in = make_inputs({In({4, 9}), In({6, 9}), In({6})});
  const Tensor &x = in[0], &w = in[1], &b = in[2];
  check_close(linear_gelu(x, w, b).to_vector(), gelu_tanh(linear(x, w, b)).to_vector(), 1e-14, 1e-14, "linear_gelu");
  CHECK_THROWS_WITH_AS(linear_gelu(x, w, Tensor()), doctest::Contains("linear_gelu: needs a bias"), pw::Error);
  CHECK_THROWS_WITH_AS(linear_gelu(x, w, zeros({5}, DType::F64)), doctest::Contains("linear_gelu: bias"), pw::Error);
  CHECK_THROWS_WITH_AS(linear_gelu(x, zeros({6, 8}, DType::F64), b), doctest::Contains("linear_gelu"), pw::Error);
}

namespace {
// Runs f in float32 and float64 on the same values; forward and input gradients agree to rtol 1e-4.
void check_f32_vs_f64(const std::vector<Shape>& shapes, const OpFn& f) {
  std::vector<Tensor> x64, x32;
  for (const Shape& s : shapes) {
    Tensor t = normal(s, 0, 1, DType::F64, nullptr);
    x64.push_back(t.clone().requires_grad_());
    x32.push_back(t.to(DType::F32).requires_grad_());
  }
  Tensor y64 = f(x64), y32 = f(x32);
  REQUIRE(y32.dtype() == DType::F32);
  check_close(y32.to_vector(), y64.to_vector(), 1e-4, 1e-4, "forward f32 vs f64");
  Tensor u = normal(y64.shape(), 0, 1, DType::F64, nullptr);
  y64.backward(u);
  y32.backward(u.to(DType::F32));
  for (size_t k = 0; k < shapes.size(); ++k) {
    CAPTURE(k);
    check_close(x32[k].grad().to_vector(), x64[k].grad().to_vector(), 1e-4, 1e-4, "grad f32 vs f64");
  }
}
}  // namespace

TEST_CASE("float32 matmul and linear agree with float64") {
  check_f32_vs_f64({{4, 37, 65}, {65, 49}}, [](auto& x) { return matmul(x[0], x[1]); });
  check_f32_vs_f64({{3, 1, 33, 20}, {2, 20, 41}}, [](auto& x) { return matmul(x[0], x[1]); });
  check_f32_vs_f64({{8, 49, 96}, {192, 96}, {192}}, [](auto& x) { return linear(x[0], x[1], x[2]); });
}

TEST_CASE("matmul and linear reject bad input") {
  Tensor a = zeros({2, 3, 4}, DType::F64), b = zeros({5, 4}, DType::F64);
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul: inner dimensions"), pw::Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})), doctest::Contains("do not broadcast"), pw::Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3, 4}), zeros({4, 5}, DType::F64)), doctest::Contains("matmul"), pw::Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3}), zeros({4})), doctest::Contains("matmul"), pw::Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({}), zeros({4})), doctest::Contains("matmul"), pw::Error);
  CHECK_THROWS_WITH_AS(matmul(from_indices({1, 2, 3, 4}, {2, 2}), from_indices({1, 2, 3, 4}, {2, 2})),
                       doctest::Contains("matmul"), pw::Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 5})), doctest::Contains("linear"), pw::Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 5}), zeros({4, 5, 1})), doctest::Contains("linear"), pw::Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 5}), zeros({4, 5}), zeros({5})), doctest::Contains("linear: bias"), pw::Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 5}), zeros({4, 5}), zeros({4}, DType::F64)), doctest::Contains("linear"),
                       pw::Error);
}
