// Flash attention on CUDA (kernels/attention/flash_attention_cuda.h) against the double CPU
// reference (kernels/attention/flash_reference.h), which is itself checked here against the
// composition of patchwork's primitive ops and against finite differences.
// Without a CUDA device (or a CUDA build) the GPU cases count themselves skipped
// (tests/skip.h) and ctest reports the suite as skipped.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include "kernels/ops.h"
#include "kernels/attention/flash_reference.h"
#include "runtime/cuda/device_info.h"
#include "tests/skip.h"
#if PW_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/attention/flash_attention_cuda.h"
#endif

using namespace pw;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

enum class BiasKind { None, RelPos, MaskPerSample, MaskShared, Full };
const char* bias_name(BiasKind k) {
  switch (k) {
    case BiasKind::None: return "none";
    case BiasKind::RelPos: return "(NH,N,N)";
    case BiasKind::MaskPerSample: return "(B,1,N,N)";
    case BiasKind::MaskShared: return "(1,1,N,N)";
    case BiasKind::Full: return "(B,NH,N,N)";
  }
  return "?";
}

// Random inputs for one case: q, k, v, dout ~ N(0,1); a real-valued bias ~ N(0,1) for
// RelPos/Full, a mask (0 or -inf, never on the diagonal so no row is fully masked) otherwise.
struct Inputs {
  flash_ref::Dims d;
  BiasKind kind = BiasKind::None;
  std::vector<double> q, k, v, dout, bias;
  const double* bias_ptr() const { return kind == BiasKind::None ? nullptr : bias.data(); }
};

Inputs make_inputs(int B, int NH, int N, int HD, BiasKind kind, uint32_t seed) {
  Inputs in;
  in.kind = kind;
  in.d = {B, NH, N, HD, 1, 1, 1.0 / std::sqrt((double)HD)};
  if (kind == BiasKind::MaskPerSample) in.d.Bb = B;
  if (kind == BiasKind::RelPos) in.d.Hb = NH;
  if (kind == BiasKind::Full) in.d.Bb = B, in.d.Hb = NH;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  for (auto* t : {&in.q, &in.k, &in.v, &in.dout}) {
    t->resize(in.d.qkv_size());
    for (double& x : *t) x = nd(rng);
  }
  if (kind != BiasKind::None) {
    in.bias.resize(in.d.bias_size());
    const bool mask = kind == BiasKind::MaskPerSample || kind == BiasKind::MaskShared;
    for (size_t e = 0; e < in.bias.size(); ++e) {
      const int i = (int)(e / N % N), j = (int)(e % N);
      in.bias[e] = mask ? (i != j && ud(rng) < 0.3 ? -kInf : 0.0) : nd(rng);
    }
  }
  return in;
}

// |got - ref| <= atol + rtol * |ref| everywhere (NaN fails); reports the worst element.
void check_close(const char* what, const std::vector<double>& got, const std::vector<double>& ref, double atol,
                 double rtol) {
  REQUIRE(got.size() == ref.size());
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same_inf = std::isinf(ref[i]) && got[i] == ref[i];
    const double err = std::abs(got[i] - ref[i]), tol = atol + rtol * std::abs(ref[i]);
    if (same_inf) continue;
    if (!(err <= tol)) ++bad;
    const double excess = std::isnan(err) ? kInf : err - tol;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO(what, ": ", bad, " of ", got.size(), " elements out of tolerance; worst at ", worst, ": got ",
       got.empty() ? 0.0 : got[worst], ", expected ", ref.empty() ? 0.0 : ref[worst]);
  CHECK(bad == 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The reference itself (CPU, always runs).

namespace {

Tensor t64(const std::vector<double>& x, const Shape& s) { return from_vector(x, s, DType::F64).requires_grad_(); }

}  // namespace

TEST_CASE("flash reference equals the composed attention, forward and backward") {
  for (BiasKind kind : {BiasKind::None, BiasKind::RelPos, BiasKind::MaskPerSample, BiasKind::MaskShared,
                        BiasKind::Full}) {
    CAPTURE(bias_name(kind));
    const Inputs in = make_inputs(2, 3, 7, 5, kind, 11u + (uint32_t)kind);
    const auto& d = in.d;
    std::vector<double> o, lse, dq, dk, dv, dbias;
    flash_ref::forward(o, lse, in.q.data(), in.k.data(), in.v.data(), in.bias_ptr(), d);
    flash_ref::backward(dq, dk, dv, dbias, in.q.data(), in.k.data(), in.v.data(), in.dout.data(), in.bias_ptr(), d);

    // softmax(scale * q k^T + bias) v from primitive ops, with autograd.
    const Shape s4{d.B, d.NH, d.N, d.HD};
    Tensor q = t64(in.q, s4), k = t64(in.k, s4), v = t64(in.v, s4);
    Tensor logits = matmul(q * d.scale, transpose(k, -2, -1));
    Tensor bias;
    if (kind != BiasKind::None) {
      bias = t64(in.bias, {d.Bb, d.Hb, d.N, d.N});
      logits = logits + bias;
    }
    Tensor y = matmul(softmax(logits, -1), v);
    y.backward(from_vector(in.dout, s4, DType::F64));
    check_close("o", o, y.to_vector(), 1e-12, 1e-10);
    check_close("dq", dq, q.grad().to_vector(), 1e-12, 1e-10);
    check_close("dk", dk, k.grad().to_vector(), 1e-12, 1e-10);
    check_close("dv", dv, v.grad().to_vector(), 1e-12, 1e-10);
    if (kind != BiasKind::None) check_close("dbias", dbias, bias.grad().to_vector(), 1e-12, 1e-10);

    // lse against its definition: log sum_j exp(s_ij).
    Tensor lse_composed = log(sum(exp(logits.detach()), {-1}));
    check_close("lse", lse, lse_composed.to_vector(), 1e-12, 1e-10);
  }
}

TEST_CASE("flash reference gradients match finite differences") {
  // loss = sum(o * dout); central differences, eps 1e-6, on a tiny case per bias layout.
  for (BiasKind kind : {BiasKind::None, BiasKind::RelPos, BiasKind::MaskPerSample, BiasKind::Full}) {
    CAPTURE(bias_name(kind));
    Inputs in = make_inputs(2, 2, 3, 2, kind, 77u + (uint32_t)kind);
    std::vector<double> dq, dk, dv, dbias;
    flash_ref::backward(dq, dk, dv, dbias, in.q.data(), in.k.data(), in.v.data(), in.dout.data(), in.bias_ptr(),
                        in.d);
    auto loss = [&] {
      std::vector<double> o, lse;
      flash_ref::forward(o, lse, in.q.data(), in.k.data(), in.v.data(), in.bias_ptr(), in.d);
      double s = 0;
      for (size_t i = 0; i < o.size(); ++i) s += o[i] * in.dout[i];
      return s;
    };
    auto numeric = [&](std::vector<double>& x) {
      std::vector<double> g(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        if (std::isinf(x0)) continue;  // masked entries: gradient 0
        const double eps = 1e-6;
        x[i] = x0 + eps;
        const double lp = loss();
        x[i] = x0 - eps;
        const double lm = loss();
        x[i] = x0;
        g[i] = (lp - lm) / (2 * eps);
      }
      return g;
    };
    check_close("dq", dq, numeric(in.q), 1e-5, 1e-3);
    check_close("dk", dk, numeric(in.k), 1e-5, 1e-3);
    check_close("dv", dv, numeric(in.v), 1e-5, 1e-3);
    if (kind != BiasKind::None) check_close("dbias", dbias, numeric(in.bias), 1e-5, 1e-3);
  }
}

// ---------------------------------------------------------------------------------------------
// The CUDA kernels.

namespace {

// Prints the skip reason and returns true where the GPU cases cannot run.
bool skip_gpu() {
  if (!cuda_built()) {
    pw::test::note_skipped("built without CUDA");
    return true;
  }
  if (cuda_device_count() == 0) {
    pw::test::note_skipped("no CUDA device");
    return true;
  }
  return false;
}

}  // namespace

#if PW_HAVE_CUDA

namespace {

#define CUDA_OK(call) REQUIRE_MESSAGE((call) == cudaSuccess, #call, ": ", cudaGetErrorString(cudaGetLastError()))

// Host conversions for the bf16 storage word (round to nearest even; inputs are finite).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class T>
T to_storage(double x) {
  if constexpr (std::is_same_v<T, float>)
    return (float)x;
  else
    return bf16_t{to_bf16((float)x)};
}
template <class T>
double from_storage(T x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else
    return from_bf16(x.bits);
}

// A device buffer of n elements of T.
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t n_) : n(n_) { CUDA_OK(cudaMalloc((void**)&p, std::max<size_t>(n, 1) * sizeof(T))); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void poison() { CUDA_OK(cudaMemset(p, 0xFF, n * sizeof(T))); }  // all-ones bits: NaN as float and bf16
  void upload(const std::vector<T>& h) { CUDA_OK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> raw() const {
    std::vector<T> h(n);
    CUDA_OK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  std::vector<double> get() const {
    std::vector<T> h = raw();
    std::vector<double> r(n);
    for (size_t i = 0; i < n; ++i) r[i] = from_storage(h[i]);
    return r;
  }
};

// Rounds x to T's precision in place (so the reference sees exactly the kernel's inputs)
// and returns the storage words.
template <class T>
std::vector<T> quantize(std::vector<double>& x) {
  std::vector<T> s(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    s[i] = to_storage<T>(x[i]);
    x[i] = from_storage(s[i]);
  }
  return s;
}

// Outputs of one fwd + bwd run, as raw bytes (for the bit-identity check) and values.
struct Run {
  std::vector<double> o, lse, dq, dk, dv, dbias;
  std::vector<uint8_t> bytes;
};

template <class T>
Run run_gpu(const Inputs& in, const std::vector<T>& q, const std::vector<T>& k, const std::vector<T>& v,
            const std::vector<T>& dout, const std::vector<float>& bias) {
  const auto& d = in.d;
  const size_t n = d.qkv_size(), rows = (size_t)d.B * d.NH * d.N;
  DevBuf<T> dq_(n), dk_(n), dv_(n), q_(n), k_(n), v_(n), o_(n), do_(n);
  DevBuf<float> lse_(rows), delta_(rows), bias_(bias.size()), dbias_(bias.size());
  q_.upload(q), k_.upload(k), v_.upload(v), do_.upload(dout);
  const bool has_bias = in.kind != BiasKind::None;
  if (has_bias) bias_.upload(bias);
  for (auto* b : {&o_, &dq_, &dk_, &dv_}) b->poison();
  lse_.poison(), delta_.poison(), dbias_.poison();
  const FlashBiasLayout bl{d.Bb, d.Hb};
  const float* bp = has_bias ? bias_.p : nullptr;
  flash_attention_forward_cuda<T>(o_.p, lse_.p, q_.p, k_.p, v_.p, bp, bl, d.B, d.NH, d.N, d.HD, (float)d.scale,
                                  nullptr);
  flash_attention_backward_cuda<T>(dq_.p, dk_.p, dv_.p, has_bias ? dbias_.p : nullptr, delta_.p, q_.p, k_.p, v_.p,
                                   o_.p, do_.p, lse_.p, bp, bl, d.B, d.NH, d.N, d.HD, (float)d.scale, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  Run r;
  r.o = o_.get(), r.lse = lse_.get(), r.dq = dq_.get(), r.dk = dk_.get(), r.dv = dv_.get();
  if (has_bias) r.dbias = dbias_.get();
  auto append = [&](const void* p, size_t bytes) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    r.bytes.insert(r.bytes.end(), b, b + bytes);
  };
  for (auto* b : {&o_, &dq_, &dk_, &dv_}) append(b->raw().data(), n * sizeof(T));
  append(lse_.raw().data(), rows * 4);
  if (has_bias) append(dbias_.raw().data(), bias.size() * 4);
  return r;
}

// One case: GPU against the double reference on the same (rounded) inputs, then a second
// run that must give the same bits.
template <class T>
void check_case(int B, int NH, int N, int HD, BiasKind kind, double atol, double rtol) {
  CAPTURE(B);
  CAPTURE(NH);
  CAPTURE(N);
  CAPTURE(HD);
  CAPTURE(bias_name(kind));
  Inputs in = make_inputs(B, NH, N, HD, kind, 1000u + 7u * N + HD + 131u * (uint32_t)kind);
  const std::vector<T> q = quantize<T>(in.q), k = quantize<T>(in.k), v = quantize<T>(in.v),
                       dout = quantize<T>(in.dout);
  std::vector<float> bias(in.bias.begin(), in.bias.end());  // the bias is float32 in both paths

  std::vector<double> o, lse, dq, dk, dv, dbias;
  flash_ref::forward(o, lse, in.q.data(), in.k.data(), in.v.data(), in.bias_ptr(), in.d);
  flash_ref::backward(dq, dk, dv, dbias, in.q.data(), in.k.data(), in.v.data(), in.dout.data(), in.bias_ptr(), in.d);

  const Run r = run_gpu<T>(in, q, k, v, dout, bias);
  check_close("o", r.o, o, atol, rtol);
  check_close("lse", r.lse, lse, atol, rtol);
  check_close("dq", r.dq, dq, atol, rtol);
  check_close("dk", r.dk, dk, atol, rtol);
  check_close("dv", r.dv, dv, atol, rtol);
  if (kind != BiasKind::None) check_close("dbias", r.dbias, dbias, atol, rtol);

  const Run again = run_gpu<T>(in, q, k, v, dout, bias);
  CHECK_MESSAGE(again.bytes == r.bytes, "two runs on the same inputs differ: not deterministic");
}

// Under AddressSanitizer (CI's EMU build, scripts/sanitize.sh) the emulated kernels run
// ~10-20x slower than in a plain EMU build: N = 200 alone took most of 15 min, and the
// whole grid at N = 130 still ran past ctest's 15 min on a loaded 2-core machine. There the
// longest sequence is 100 (one full 64-row tile and a partial one; three full 32-row tiles
// and a partial one), each bias kind runs it at one head dim (alternating 32 and 64), and
// the benchmark uses 64. A plain EMU build and a GPU run the full grid and shapes.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PW_FLASH_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PW_FLASH_TEST_ASAN 1
#endif
#if defined(PW_FLASH_TEST_ASAN)
constexpr int kLongN = 100, kBenchN = 64;
constexpr bool kLongEveryHeadDim = false;
#else
constexpr int kLongN = 200, kBenchN = 256;
constexpr bool kLongEveryHeadDim = true;
#endif

template <class T>
void check_all(double atol, double rtol) {
  const BiasKind kinds[] = {BiasKind::None, BiasKind::RelPos, BiasKind::MaskPerSample, BiasKind::MaskShared,
                            BiasKind::Full};
  for (int N : {1, 17, 64, kLongN})
    for (int HD : {32, 64})
      for (int i = 0; i < 5; ++i) {
        if (N == kLongN && !kLongEveryHeadDim && HD != (i % 2 ? 32 : 64)) continue;
        check_case<T>(2, 3, N, HD, kinds[i], atol, rtol);
      }
  // The cheap extra head dims, one shape each.
  for (int HD : {16, 128}) check_case<T>(2, 3, 70, HD, BiasKind::RelPos, atol, rtol);
}

}  // namespace

TEST_CASE("flash attention CUDA float32 matches the reference") {
  if (skip_gpu()) return;
  check_all<float>(1e-4, 1e-3);
}

// bf16: inputs are bf16 (the reference sees the same rounded values); p and ds are rounded
// to bf16 before their tensor-core matmuls and the outputs are bf16, ~3 significant digits.
TEST_CASE("flash attention CUDA bf16 matches the reference") {
  if (skip_gpu()) return;
  check_all<bf16_t>(2e-2, 2e-2);
}

TEST_CASE("flash attention CUDA rejects an unsupported head dim") {
  // The check runs before any CUDA call, so it needs the CUDA build but no device.
  float* p = reinterpret_cast<float*>(uintptr_t{256});
  auto message = [](auto call) -> std::string {
    try {
      call();
    } catch (const pw::Error& e) {
      return e.what();
    }
    return "no exception";
  };
  const std::string fwd = message(
      [&] { flash_attention_forward_cuda<float>(p, p, p, p, p, nullptr, {}, 1, 1, 8, 48, 1.f, nullptr); });
  const std::string bwd = message([&] {
    flash_attention_backward_cuda<float>(p, p, p, nullptr, p, p, p, p, p, p, p, nullptr, {}, 1, 1, 8, 48, 1.f,
                                         nullptr);
  });
  CHECK_MESSAGE(fwd.find("head dim HD = 48 is not supported") != std::string::npos, fwd);
  CHECK_MESSAGE(bwd.find("head dim HD = 48 is not supported") != std::string::npos, bwd);
}

TEST_CASE("flash attention CUDA benchmark runs") {
  if (skip_gpu()) return;
  const double tf = bench_flash_attention_cuda(2, 4, kBenchN, 64, true, 2);
  CHECK(tf > 0);
}

#else

TEST_CASE("flash attention CUDA float32 matches the reference") { skip_gpu(); }
TEST_CASE("flash attention CUDA bf16 matches the reference") { skip_gpu(); }

#endif
