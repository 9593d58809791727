// `patchwork bench gemm`: float32 GEMM throughput at the shapes a ViT on 32x32
// images runs (M = batch 128 x 49 tokens = 6272 rows, N and K = model widths),
// on 1 and 2 threads, and the batched attention GEMMs.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"

namespace pw {

namespace {

using Clock = std::chrono::steady_clock;

// Best seconds per call of f over ~budget seconds (after one warm-up call, which also
// pays for oneDNN's JIT). The best, not the mean: the machine is shared.
template <class F>
double best_seconds(F&& f, double budget = 0.12) {
  f();
  double best = 1e30, total = 0;
  for (int rep = 0; rep < 200 && (rep < 3 || total < budget); ++rep) {
    auto t0 = Clock::now();
    f();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::min(best, s);
    total += s;
  }
  return best;
}

std::vector<float> filled(int64_t n, float scale) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * (float)((i * 7919) % 1009 - 504) / 504.f;
  return v;
}

struct Threads {  // sets the OpenMP thread count for one scope
  int prev;
  explicit Threads(int n) : prev(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~Threads() { omp_set_num_threads(prev); }
};

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

}  // namespace

void bench_gemm(std::ostream& os) {
  const int64_t M = 6272;  // 128 images x 49 patches
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {  // other processes skew the 2-thread numbers
    double load = 0;
    if (std::fscanf(f, "%lf", &load) == 1)
      os << "load average " << fmt("%.2f", load) << " on " << omp_get_num_procs() << " cores"
         << (load > 0.5 ? " (busy machine: numbers are low)" : "") << "\n";
    std::fclose(f);
  }
  const int max_thr = omp_get_max_threads();
  std::vector<int> threads{1};
  if (max_thr >= 2) threads.push_back(2);
  if (max_thr > 2) threads.push_back(max_thr);

  os << "float32 GEMM, GFLOP/s (best of repeated calls; oneDNN dnnl_sgemm)\n";
  os << "  linear forward  y = x @ w^T:    x (M,K), w (N,K)   'NT'\n";
  os << "  linear dx       dx = dy @ w:    dy (M,N), w (N,K)  'NN' (sizes swapped: M x K out)\n";
  os << "  linear dw       dw = dy^T @ x:  (N,M) @ (M,K)      'TN'\n";
  os << "     M     N     K";
  for (int t : threads) os << "  fwd/" << t << "t   dx/" << t << "t   dw/" << t << "t";
  os << "\n";
  const std::vector<std::pair<int64_t, int64_t>> shapes{
      {192, 64},  {64, 64},   {128, 64},  {64, 128},  {128, 128}, {192, 192},
      {256, 128}, {256, 256}, {384, 128}, {384, 192}, {384, 256}};
  for (const auto& shape : shapes) {
    const int64_t N = shape.first, K = shape.second;  // plain names: lambdas can't capture bindings in C++17
    std::vector<float> x = filled(M * K, 1.f), w = filled(N * K, 0.1f), y(M * N), dy = filled(M * N, 1.f),
                       dx(M * K), dw(N * K);
    double flop = 2.0 * M * N * K;
    os << fmt("%6.0f", (double)M) << fmt("%6.0f", (double)N) << fmt("%6.0f", (double)K);
    for (int t : threads) {
      Threads th(t);
      double f = best_seconds([&] { gemm(false, true, M, N, K, 1.f, x.data(), K, w.data(), K, 0.f, y.data(), N); });
      double b = best_seconds([&] { gemm(false, false, M, K, N, 1.f, dy.data(), N, w.data(), K, 1.f, dx.data(), K); });
      double g = best_seconds([&] { gemm(true, false, N, K, M, 1.f, dy.data(), N, x.data(), K, 1.f, dw.data(), K); });
      os << fmt("%9.1f", flop / f * 1e-9) << fmt("%9.1f", flop / b * 1e-9) << fmt("%9.1f", flop / g * 1e-9);
    }
    os << "\n";
  }

  // Attention: B*NH = 256 heads of N = 64 tokens, HD = 32.
  //   scores = q @ k^T: (64,32) @ (32,64)  'NT'   out = p @ v: (64,64) @ (64,32)  'NN'
  const int64_t BH = 256, T = 64, HD = 32;
  std::vector<float> q = filled(BH * T * HD, 1.f), k = filled(BH * T * HD, 0.5f), s(BH * T * T),
                     o(BH * T * HD);
  double flop = 2.0 * BH * T * T * HD;
  os << "\nbatched attention GEMMs, " << BH << " x (" << T << "x" << T << "x" << HD
     << "), GFLOP/s: sequential threaded calls | batch over threads | gemm_batched\n";
  for (int t : threads) {
    Threads th(t);
    auto seq_qk = [&] {
      for (int64_t b = 0; b < BH; ++b)
        gemm(false, true, T, T, HD, 1.f, &q[b * T * HD], HD, &k[b * T * HD], HD, 0.f, &s[b * T * T], T);
    };
    auto par_qk = [&] {
#pragma omp parallel for schedule(static)
      for (int64_t b = 0; b < BH; ++b)
        gemm(false, true, T, T, HD, 1.f, &q[b * T * HD], HD, &k[b * T * HD], HD, 0.f, &s[b * T * T], T);
    };
    auto lib_qk = [&] {
      gemm_strided_batched(false, true, BH, T, T, HD, 1.f, q.data(), HD, T * HD, k.data(), HD, T * HD, 0.f,
                           s.data(), T, T * T);
    };
    auto seq_pv = [&] {
      for (int64_t b = 0; b < BH; ++b)
        gemm(false, false, T, HD, T, 1.f, &s[b * T * T], T, &k[b * T * HD], HD, 0.f, &o[b * T * HD], HD);
    };
    auto par_pv = [&] {
#pragma omp parallel for schedule(static)
      for (int64_t b = 0; b < BH; ++b)
        gemm(false, false, T, HD, T, 1.f, &s[b * T * T], T, &k[b * T * HD], HD, 0.f, &o[b * T * HD], HD);
    };
    auto lib_pv = [&] {
      gemm_strided_batched(false, false, BH, T, HD, T, 1.f, s.data(), T, T * T, k.data(), HD, T * HD, 0.f,
                           o.data(), HD, T * HD);
    };
    os << "  " << t << " thread(s)  q@k^T: " << fmt("%7.1f", flop / best_seconds(seq_qk) * 1e-9) << " |"
       << fmt("%7.1f", flop / best_seconds(par_qk) * 1e-9) << " |" << fmt("%7.1f", flop / best_seconds(lib_qk) * 1e-9)
       << "    p@v: " << fmt("%7.1f", flop / best_seconds(seq_pv) * 1e-9) << " |"
       << fmt("%7.1f", flop / best_seconds(par_pv) * 1e-9) << " |" << fmt("%7.1f", flop / best_seconds(lib_pv) * 1e-9)
       << "\n";
  }
}

}  // namespace pw
