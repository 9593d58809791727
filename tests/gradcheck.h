// One gradient-check harness for every op (STYLE.md, Tests 1, 3 and 5).
//
//   OpCase{"gelu", {In({3, 5})}, [](const std::vector<Tensor>& x) { return gelu(x[0]); }}
//
// run_op_case() draws fresh random float64 inputs of the given shapes and
// domains, then checks:
//   - analytic vs central-difference gradients (eps 1e-6, atol 1e-5, rtol 1e-3)
//     of L = sum(f(x) * u) with a random upstream gradient u (never all ones);
//   - accumulation: a second backward into the same leaves gives exactly twice
//     the first gradient.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autograd/function.h"
#include "autograd/tensor.h"

namespace pw::test {

enum class Domain {
  Any,           // normal(0, 1)
  Positive,      // uniform(0.5, 2): log, sqrt, rsqrt, pow
  AwayFromZero,  // |x| in [0.2, 2] with random sign: relu, abs, kinks at 0
  Distinct,      // a random permutation of well-separated values: max, sort-like ops
  Index,         // int64 in [0, hi): gather, embedding (no gradient)
  Fixed,         // `values` as given (no gradient unless grad is set)
};

struct In {
  Shape shape;
  Domain domain = Domain::Any;
  bool grad = true;              // check this input's gradient
  int64_t hi = 0;                // Index: exclusive upper bound
  std::vector<double> values;    // Fixed
  In(Shape s, Domain d = Domain::Any) : shape(std::move(s)), domain(d), grad(d != Domain::Index && d != Domain::Fixed) {}
  static In index(Shape s, int64_t hi) { In i(std::move(s), Domain::Index); i.hi = hi; return i; }
  static In fixed(Shape s, std::vector<double> v, DType t = DType::F64) {
    In i(std::move(s), Domain::Fixed); i.values = std::move(v); i.fixed_dtype = t; return i;
  }
  In no_grad() const { In i = *this; i.grad = false; return i; }
  DType fixed_dtype = DType::F64;
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;
  std::vector<In> inputs;
  OpFn fn;
  double atol = 1e-5, rtol = 1e-3;
};

inline std::mt19937_64& test_rng() {
  static std::mt19937_64 rng(std::random_device{}());
  return rng;
}

// Fresh random inputs for a case (STYLE.md Tests 5: never zeros or ones).
inline std::vector<Tensor> make_inputs(const std::vector<In>& ins) {
  std::vector<Tensor> xs;
  auto& rng = test_rng();
  for (const In& in : ins) {
    int64_t n = numel_of(in.shape);
    std::vector<double> v(n);
    std::normal_distribution<double> nd(0, 1);
    std::uniform_real_distribution<double> ud(0.5, 2.0), mag(0.2, 2.0);
    switch (in.domain) {
      case Domain::Any: for (auto& e : v) e = nd(rng); break;
      case Domain::Positive: for (auto& e : v) e = ud(rng); break;
      case Domain::AwayFromZero: for (auto& e : v) e = mag(rng) * (rng() & 1 ? 1 : -1); break;
      case Domain::Distinct: {
        for (int64_t i = 0; i < n; ++i) v[i] = (i - n / 2) * 0.1 + 0.013;
        std::shuffle(v.begin(), v.end(), rng);
        break;
      }
      case Domain::Index: {
        std::uniform_int_distribution<int64_t> id(0, in.hi - 1);
        for (auto& e : v) e = (double)id(rng);
        break;
      }
      case Domain::Fixed: v = in.values; break;
    }
    DType t = in.domain == Domain::Index ? DType::I64 : in.domain == Domain::Fixed ? in.fixed_dtype : DType::F64;
    Tensor x = from_vector(v, in.shape, t);
    if (in.grad) x.requires_grad_();
    xs.push_back(x);
  }
  return xs;
}

inline double dot(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector(), vb = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

inline void run_op_case(const OpCase& c) {
  CAPTURE(c.name);
  std::vector<Tensor> xs = make_inputs(c.inputs);
  Tensor y = c.fn(xs);
  REQUIRE(y.defined());
  REQUIRE(y.dtype() == DType::F64);
  auto& rng = test_rng();
  std::normal_distribution<double> nd(0, 1);
  std::vector<double> uv(y.numel());
  for (auto& e : uv) e = nd(rng);
  Tensor u = from_vector(uv, y.shape(), DType::F64);

  bool any_grad = false;
  for (const In& in : c.inputs) any_grad = any_grad || in.grad;
  REQUIRE(any_grad);
  REQUIRE(y.requires_grad());
  y.backward(u, /*retain_graph=*/true);

  const double eps = 1e-6;
  for (size_t k = 0; k < xs.size(); ++k) {
    if (!c.inputs[k].grad) continue;
    CAPTURE(k);
    Tensor g = xs[k].grad();
    REQUIRE_MESSAGE(g.defined(), "no gradient reached input ", k);
    REQUIRE(g.shape() == xs[k].shape());
    std::vector<double> analytic = g.to_vector();
    double* p = xs[k].data<double>();
    for (int64_t i = 0; i < xs[k].numel(); ++i) {
      double old = p[i];
      double lp, lm;
      {
        NoGrad ng;
        p[i] = old + eps;
        lp = dot(c.fn(xs), u);
        p[i] = old - eps;
        lm = dot(c.fn(xs), u);
        p[i] = old;
      }
      double numeric = (lp - lm) / (2 * eps);
      CAPTURE(i);
      CAPTURE(numeric);
      CAPTURE(analytic[i]);
      CHECK(std::abs(analytic[i] - numeric) <= c.atol + c.rtol * std::abs(numeric));
    }
  }

  // Accumulation: the second backward adds the same gradient again.
  std::vector<std::vector<double>> first;
  for (size_t k = 0; k < xs.size(); ++k)
    first.push_back(c.inputs[k].grad ? xs[k].grad().to_vector() : std::vector<double>{});
  y.backward(u, /*retain_graph=*/true);
  for (size_t k = 0; k < xs.size(); ++k) {
    if (!c.inputs[k].grad) continue;
    std::vector<double> second = xs[k].grad().to_vector();
    for (size_t i = 0; i < second.size(); ++i) {
      CAPTURE(k);
      CAPTURE(i);
      CHECK(second[i] == 2 * first[k][i]);
    }
  }
}

// Runs every case of a table; adding an op adds one line to a table.
inline void run_op_cases(const std::vector<OpCase>& cases) {
  for (const OpCase& c : cases) {
    SUBCASE(c.name.c_str()) { run_op_case(c); }
  }
}

// |got - ref| <= atol + rtol*|ref| elementwise, with the worst element reported.
inline void check_close(const std::vector<double>& got, const std::vector<double>& ref, double atol,
                        double rtol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == ref.size(), what, ": ", got.size(), " values vs ", ref.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - ref[i]) <= atol + rtol * std::abs(ref[i]))) {
      FAIL_CHECK(what, ": element ", i, " got ", got[i], " expected ", ref[i]);
      return;
    }
  }
}

}  // namespace pw::test
