#include "data/rng.h"

#include <cmath>

#include "runtime/check.h"
#include "autograd/tensor.h"

namespace pw {

namespace {
// splitmix64's finaliser: a bijective mix, so distinct inputs give distinct keys
// and nearby (epoch, index) pairs give unrelated Philox keys.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

SampleRng::SampleRng(uint64_t seed, uint64_t epoch, uint64_t index, RngStream stream) {
  uint64_t k = mix64(seed);
  k = mix64(k ^ epoch);
  k = mix64(k ^ index);
  key_ = mix64(k ^ (uint64_t)stream);
}

float SampleRng::uniform() { return philox_uniform(key_, ctr_++); }
double SampleRng::uniform(double lo, double hi) { return lo + (hi - lo) * (double)uniform(); }
double SampleRng::uniform_open() { return 1.0 - (double)uniform(); }

uint64_t SampleRng::bits48() {
  // philox_uniform carries 24 exact bits: k/2^24.
  uint64_t a = (uint64_t)((double)uniform() * 16777216.0);
  uint64_t b = (uint64_t)((double)uniform() * 16777216.0);
  return (a << 24) | b;
}

int64_t SampleRng::randint(int64_t lo, int64_t hi) {
  PW_CHECK(lo <= hi, "SampleRng::randint: empty range [", lo, ", ", hi, "]");
  uint64_t n = (uint64_t)(hi - lo) + 1;
  // NOTE: modulo bias is at most n / 2^48, negligible for any data-set size.
  return lo + (int64_t)(bits48() % n);
}

bool SampleRng::bernoulli(double p) { return (double)uniform() < p; }

double SampleRng::normal() {
  const double two_pi = 6.283185307179586;
  double u1 = uniform_open(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

double SampleRng::gamma(double a) {
  PW_CHECK(a > 0, "SampleRng::gamma: shape must be > 0, got ", a);
  if (a < 1.0) {
    // Gamma(a) = Gamma(a+1) * U^(1/a).
    double g = gamma(a + 1.0);
    return g * std::pow(uniform_open(), 1.0 / a);
  }
  double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = normal(), v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = uniform_open();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

double SampleRng::beta(double a, double b) {
  double x = gamma(a), y = gamma(b);
  // NOTE: with tiny shapes both gammas can underflow to 0; the limit is a coin flip.
  if (x + y == 0) return bernoulli(a / (a + b)) ? 1.0 : 0.0;
  return x / (x + y);
}

}  // namespace pw
