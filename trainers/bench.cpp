#include "trainers/bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "kernels/ops.h"
#include "autograd/profile.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/flash_attention_cuda.h"
#include "kernels/linear_attention/linear_attention.h"
#include "nn/posenc.h"
#include "runtime/cuda/runtime.h"
#include "trainers/config.h"
#include "trainers/device.h"
#include "trainers/optim.h"
#include "trainers/trainer.h"

namespace pw {

namespace {

using Clock = std::chrono::steady_clock;

const char* kBenchUsage =
    "usage: patchwork bench train CONFIG [--steps N] [--warmup W] [--repeat R] [--threads T]\n"
    "                                    [--device cpu|cuda|auto] [--profile-steps P] [--set section.key=value]...\n"
    "  times R runs of N training steps (train()'s step: forward, loss, backward, clipping, optimizer\n"
    "  step, EMA, as the config says) on one fixed synthetic batch at train.lr after W warmup steps,\n"
    "  then P more steps with the per-op profiler on.\n"
    "  --device sets train.device (default: the config's); on cuda the loss is read once per run.\n";

struct BenchArgs {
  std::string config;
  std::vector<std::string> sets;
  int64_t steps = 20, warmup = 3, repeat = 3, profile_steps = 10;
  int threads = 0;  // 0: train.threads, else every core
};

BenchArgs parse_bench(const std::vector<std::string>& a) {
  BenchArgs r;
  auto value = [&](size_t& i) -> std::string {
    PW_CHECK(i + 1 < a.size(), "option ", a[i], " needs a value\n", kBenchUsage);
    return a[++i];
  };
  auto count = [&](size_t& i, int64_t lo) {
    std::string opt = a[i], v = value(i);
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 10);
    PW_CHECK(end && *end == 0 && n >= lo, opt, ": expected an integer >= ", lo, ", got '", v, "'");
    return (int64_t)n;
  };
  for (size_t i = 3; i < a.size(); ++i) {
    const std::string& s = a[i];
    if (s == "--set") r.sets.push_back(value(i));
    else if (s.rfind("--set=", 0) == 0) r.sets.push_back(s.substr(6));
    else if (s == "--steps") r.steps = count(i, 1);
    else if (s == "--warmup") r.warmup = count(i, 0);
    else if (s == "--repeat") r.repeat = count(i, 1);
    else if (s == "--threads") r.threads = (int)count(i, 1);
    else if (s == "--profile-steps") r.profile_steps = count(i, 0);
    else if (s == "--device") r.sets.push_back("train.device=" + value(i));  // checked by the config schema
    else if (s.rfind("--", 0) == 0) PW_FAIL("bench train: unknown option ", s, "\n", kBenchUsage);
    else {
      PW_CHECK(r.config.empty(), "bench train: more than one config file given ('", r.config, "' and '", s, "')");
      r.config = s;
    }
  }
  PW_CHECK(!r.config.empty(), "bench train: no config file given\n", kBenchUsage);
  PW_CHECK(std::filesystem::exists(r.config), "config file '", r.config, "' does not exist");
  return r;
}

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
// CPU time of the whole process (all threads), seconds: on a busy machine it shows
// the work done where the wall clock also counts the waits for a core.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void print_profile(const OpProfile& prof, int64_t steps, double step_s) {
  // Merge equal names (the map is keyed by the literal's address).
  std::map<std::string, OpProfile::Times> ops;
  double op_fwd = 0, op_bwd = 0;
  for (auto& [name, t] : prof.ops) {
    OpProfile::Times& m = ops[name];
    m.forward_s += t.forward_s;
    m.backward_s += t.backward_s;
    m.forward_calls += t.forward_calls;
    m.backward_calls += t.backward_calls;
    op_fwd += t.forward_s;
    op_bwd += t.backward_s;
  }
  std::vector<std::pair<std::string, OpProfile::Times>> rows(ops.begin(), ops.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
    return a.second.forward_s + a.second.backward_s > b.second.forward_s + b.second.backward_s;
  });
  double per = 1000.0 / (double)steps, step_ms = 1000 * step_s;
  std::printf("\nper-op time, ms per step (forward: from the previous op's end to this op's end):\n");
  std::printf("  %-22s %9s %9s %9s %6s %7s\n", "op", "forward", "backward", "total", "%", "calls");
  for (auto& [name, t] : rows) {
    double tot = (t.forward_s + t.backward_s) * per;
    std::printf("  %-22s %9.3f %9.3f %9.3f %5.1f%% %7.1f\n", name.c_str(), t.forward_s * per, t.backward_s * per,
                tot, 100 * tot / step_ms, (double)std::max(t.forward_calls, t.backward_calls) / steps);
  }
  std::printf("  %-22s %9.3f %9.3f %9.3f %5.1f%%\n", "(all ops)", op_fwd * per, op_bwd * per, (op_fwd + op_bwd) * per,
              100 * (op_fwd + op_bwd) * per / step_ms);
  std::printf("\nphases, ms per step:\n");
  double phased = 0;
  const char* order[] = {"forward + loss", "zero_grad", "backward", "clip_grad", "optimizer", "ema"};
  for (const char* name : order) {
    double s = 0;
    bool seen = false;
    for (auto& [n, v] : prof.phases)
      if (std::strcmp(n, name) == 0) {
        s += v;
        seen = true;
      }
    if (!seen && (std::strcmp(name, "clip_grad") == 0 || std::strcmp(name, "ema") == 0)) continue;  // off
    phased += s;
    std::printf("  %-22s %9.3f %5.1f%%\n", name, s * per, 100 * s * per / step_ms);
    if (std::strcmp(name, "backward") == 0)
      std::printf("    %-20s %9.3f   (graph walk, buffers, leaf sums)\n", "engine overhead", (s - op_bwd) * per);
  }
  std::printf("  %-22s %9.3f   (loss.item, loop)\n", "other", step_ms - phased * per);
}

}  // namespace

int cmd_bench_train(const std::vector<std::string>& args) {
  BenchArgs a = parse_bench(args);
  Config cfg = Config::load(a.config, a.sets);
  int threads = a.threads > 0 ? a.threads : (int)cfg.get_int("train.threads");
  if (threads > 0) omp_set_num_threads(threads);
  threads = omp_get_max_threads();

  const TrainSpec spec = TrainSpec::from(cfg);
  const Device device = resolve_device(cfg, false);
  apply_precision(cfg, device, false);
  std::shared_ptr<Module> model = build_model(cfg);  // seeds the default generator from train.seed
  model->train();
  model->to(device);  // before the optimizer and the EMA: their state is created on the parameters' device
  std::unique_ptr<Optimizer> optim = make_optimizer(spec.optim, model->parameters());
  std::unique_ptr<Ema> ema = spec.ema_decay > 0 ? std::make_unique<Ema>(*model, spec.ema_decay) : nullptr;

  const int64_t B = spec.batch_size, C = cfg.get_int("model.channels"), S = cfg.get_int("model.image_size"),
                K = cfg.get_int("model.num_classes");
  Generator gen(1);
  std::vector<int64_t> y(B);
  for (int64_t i = 0; i < B; ++i) y[i] = (i * 7 + 3) % K;
  Batch batch;
  batch.images = normal({B, C, S, S}, 0, 1, DType::F32, &gen).to(device);
  batch.labels = from_indices(y, {B}).to(device);
  // train()'s step at a constant learning rate; the loss stays on the device (reading it
  // syncs a CUDA device), so the timed loops read it once per run.
  auto step = [&]() { return train_step(*model, *optim, ema.get(), batch, spec, spec.lr).loss; };

  std::printf("bench train %s: %s, %lld parameters, batch %lld of %lldx%lldx%lld, %s, %d threads, %s, label smoothing %g",
              a.config.c_str(), cfg.get_string("model.type").c_str(), (long long)model->num_parameters(),
              (long long)B, (long long)C, (long long)S, (long long)S, device_name(device), threads,
              spec.optim.kind.c_str(), spec.label_smoothing);
  if (spec.clip_grad > 0) std::printf(", clip_grad %g", spec.clip_grad);
  if (ema) std::printf(", EMA %g", spec.ema_decay);
  std::printf("\n");
  std::fflush(stdout);

  Tensor warm;
  for (int64_t i = 0; i < a.warmup; ++i) warm = step();
  if (warm.defined()) warm.item();  // the warmup has finished on the device too
  std::vector<double> ips;
  double loss = 0;
  for (int64_t r = 0; r < a.repeat; ++r) {
    auto t0 = Clock::now();
    double c0 = cpu_seconds();
    Tensor last;
    for (int64_t i = 0; i < a.steps; ++i) last = step();
    loss = last.item();  // waits for the device: the run's time includes all its work
    double dt = seconds(t0), cpu = cpu_seconds() - c0;
    ips.push_back((double)(B * a.steps) / dt);
    std::printf("run %lld: %lld steps in %.3f s: %.2f ms/step (cpu %.2f ms/step), %.1f images/s (loss %.4f)\n",
                (long long)r + 1, (long long)a.steps, dt, 1000 * dt / a.steps, 1000 * cpu / a.steps, ips.back(), loss);
    std::fflush(stdout);
  }
  std::vector<double> sorted = ips;
  std::sort(sorted.begin(), sorted.end());
  double median = sorted[sorted.size() / 2];
  if (sorted.size() % 2 == 0) median = 0.5 * (median + sorted[sorted.size() / 2 - 1]);
  std::printf("median: %.1f images/s, %.2f ms/step\n", median, 1000.0 * B / median);

  if (a.profile_steps > 0) {
    OpProfile prof;
    auto t0 = Clock::now();
    Tensor last;
    for (int64_t i = 0; i < a.profile_steps; ++i) last = step();
    last.item();
    double dt = seconds(t0);
    // NOTE: on CUDA the per-op times are launch (host) times, not kernel times.
    std::printf("\nprofiled: %lld steps, %.2f ms/step, %.1f images/s\n", (long long)a.profile_steps,
                1000 * dt / a.profile_steps, (double)(B * a.profile_steps) / dt);
    print_profile(prof, a.profile_steps, dt / a.profile_steps);
  }
  std::printf("RESULT images_per_s=%.3f params=%lld ms_per_step=%.3f\n", median, (long long)model->num_parameters(),
              1000.0 * B / median);
  return 0;
}

// Times attention_qkv forward and forward + backward on the CPU (fp32) and returns GFLOP/s
// (4 N^2 HD flops per head forward, 8 backward: the matmuls only, softmax not counted).
double bench_attention_cpu(int64_t B, int64_t NH, int64_t N, int64_t HD, int64_t iters, double& fwd_ms,
                           double& bwd_ms) {
  Generator gen(1);
  Tensor qkv = normal({B, N, 3 * NH * HD}, 0, 1, DType::F32, &gen).requires_grad_();
  Tensor dy = normal({B, N, NH * HD}, 0, 1, DType::F32, &gen);
  const double scale = 1.0 / std::sqrt((double)HD);
  // The fastest of 5 runs of n iterations, in ms per iteration (the least disturbed by
  // other work on the machine).
  auto run = [&](int64_t n, bool backward) {
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < n; ++i) {
        Tensor y = attention_qkv(qkv, NH, scale);
        if (backward) y.backward(dy);
      }
      best = std::min(best, 1000.0 * seconds(t0) / (double)n);
    }
    return best;
  };
  run(3, true);
  fwd_ms = run(iters, false);
  bwd_ms = run(iters, true) - fwd_ms;
  const double flops = 4.0 * B * NH * N * N * HD;
  return 3 * flops / (fwd_ms + bwd_ms) / 1e6;
}

// Softmax (attention_qkv) against linear attention (linear_attention_qkv, both feature
// maps) on the CPU in fp32, forward + backward, over the token counts ns. The three ops
// are timed in turn within each of 5 rounds and each keeps its fastest round, so a
// burst of other work on the machine hits them alike. Iterations per round: enough
// for about 0.2 s, at most `iters`.
void bench_attention_sweep_cpu(int64_t B, int64_t NH, int64_t HD, const std::vector<int64_t>& ns, int64_t iters) {
  std::printf("# patchwork bench attention --device cpu --sweep: B=%lld NH=%lld HD=%lld fp32, threads=%d\n"
              "# fwd+bwd ms per call (best of 5 alternating rounds)\n",
              (long long)B, (long long)NH, (long long)HD, omp_get_max_threads());
  std::printf("%8s %12s %12s %12s %10s\n", "N", "softmax", "lin_taylor", "lin_elu", "sm/taylor");
  std::vector<std::pair<int64_t, bool>> faster;  // (N, linear_taylor faster than softmax)
  for (int64_t N : ns) {
    Generator gen(1);
    Tensor qkv = normal({B, N, 3 * NH * HD}, 0, 1, DType::F32, &gen).requires_grad_();
    Tensor dy = normal({B, N, NH * HD}, 0, 1, DType::F32, &gen);
    const double scale = 1.0 / std::sqrt((double)HD);
    std::vector<std::function<Tensor()>> ops = {
        [&] { return attention_qkv(qkv, NH, scale); },
        [&] { return linear_attention_qkv(qkv, NH, LinearFeatureMap::Taylor); },
        [&] { return linear_attention_qkv(qkv, NH, LinearFeatureMap::Elu); },
    };
    auto once = [&](size_t k, int64_t n) {
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < n; ++i) ops[k]().backward(dy);
      return 1000.0 * seconds(t0) / (double)n;
    };
    std::vector<int64_t> n(ops.size());
    std::vector<double> best(ops.size(), 1e30);
    for (size_t k = 0; k < ops.size(); ++k) {
      once(k, 1);  // warm up (first-call allocations), then size the rounds
      const double ms = once(k, 1);
      n[k] = std::max<int64_t>(1, std::min<int64_t>(iters, (int64_t)(200.0 / std::max(ms, 1e-3))));
    }
    for (int r = 0; r < 5; ++r)
      for (size_t k = 0; k < ops.size(); ++k) best[k] = std::min(best[k], once(k, n[k]));
    faster.push_back({N, best[1] < best[0]});
    std::printf("%8lld %12.3f %12.3f %12.3f %10.2f\n", (long long)N, best[0], best[1], best[2], best[0] / best[1]);
    std::fflush(stdout);
  }
  // The smallest N from which linear_taylor is faster at every larger N swept (a lone
  // noisy win at a small N does not count).
  int64_t crossover = -1;
  for (auto it = faster.rbegin(); it != faster.rend() && it->second; ++it) crossover = it->first;
  if (crossover > 0)
    std::printf("RESULT linear_taylor is faster than softmax from N=%lld on\n", (long long)crossover);
  else
    std::printf("RESULT softmax is faster at the largest N swept\n");
}

// SASA on the CPU in fp32, forward + backward: the fused local_attention_rel against the
// masked O(N^2) composition (SasaTerm::masked_attention) over square grids of the given
// sides, no class token. Rounds alternate as in the sweep; each form keeps its fastest.
void bench_sasa_cpu(int64_t B, int64_t NH, int64_t HD, int64_t K, const std::vector<int64_t>& sides, int64_t iters) {
  std::printf("# patchwork bench attention --device cpu --sasa: B=%lld NH=%lld HD=%lld K=%lld fp32, threads=%d\n"
              "# fwd+bwd ms per call (best of 5 alternating rounds)\n",
              (long long)B, (long long)NH, (long long)HD, (long long)K, omp_get_max_threads());
  std::printf("%6s %6s %12s %12s %10s\n", "side", "N", "local", "masked", "speedup");
  for (int64_t side : sides) {
    const int64_t N = side * side;
    Generator gen(1);
    SasaTerm term(side, side, HD, K, 0);
    auto leaf = [&] { return normal({B, NH, N, HD}, 0, 1, DType::F32, &gen).requires_grad_(); };
    Tensor q = leaf(), k = leaf(), v = leaf();
    Tensor dy = normal({B, NH, N, HD}, 0, 1, DType::F32, &gen);
    std::vector<std::function<Tensor()>> ops = {
        [&] { return local_attention_rel(q, k, v, term.row, term.col, side, side, K, 0); },
        [&] { return term.masked_attention(q, k, v); },
    };
    auto once = [&](size_t o, int64_t n) {
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < n; ++i) ops[o]().backward(dy);
      return 1000.0 * seconds(t0) / (double)n;
    };
    std::vector<int64_t> n(ops.size());
    std::vector<double> best(ops.size(), 1e30);
    for (size_t o = 0; o < ops.size(); ++o) {
      once(o, 1);  // warm up (the masked form builds its index here), then size the rounds
      const double ms = once(o, 1);
      n[o] = std::max<int64_t>(1, std::min<int64_t>(iters, (int64_t)(200.0 / std::max(ms, 1e-3))));
    }
    for (int r = 0; r < 5; ++r)
      for (size_t o = 0; o < ops.size(); ++o) best[o] = std::min(best[o], once(o, n[o]));
    std::printf("%6lld %6lld %12.3f %12.3f %10.2f\n", (long long)side, (long long)N, best[0], best[1],
                best[1] / best[0]);
    std::fflush(stdout);
  }
}

int cmd_bench_attention(const std::vector<std::string>& a) {
  const char* usage =
      "usage: patchwork bench attention [--device cuda|cpu] [--batch B] [--heads NH] [--n N] [--hd HD] "
      "[--bf16|--fp32] [--iters I] [--threads T]\n"
      "       patchwork bench attention --device cpu --sweep [--ns N1,N2,...] [--batch B] [--heads NH] [--hd HD]\n"
      "  --sweep: softmax vs linear attention (taylor, elu), fwd+bwd ms over N (default B 1, NH 4, HD 64,\n"
      "  N 64,128,...,4096)\n"
      "       patchwork bench attention --device cpu --sasa [--sides S1,S2,...] [--kernel K] [--batch B] [--heads NH]\n"
      "         [--hd HD] [--threads T]\n"
      "  --sasa: SASA's fused local_attention_rel vs the masked O(N^2) composition, fwd+bwd ms on S x S grids\n"
      "  (default sides 7,14,28, K 7, B 8, NH 4, HD 16)";
  int64_t B = 8, NH = 12, N = 1024, HD = 64, iters = 20, threads = 0;
  bool bf16 = true, cpu = false, sweep = false, sasa = false, set_b = false, set_nh = false, set_hd = false;
  int64_t kernel = 7;
  std::vector<int64_t> sides = {7, 14, 28};
  std::vector<int64_t> ns = {64, 128, 256, 512, 1024, 2048, 4096};
  for (size_t i = 3; i < a.size(); ++i) {
    const std::string& s = a[i];
    if (s == "--sweep") {
      sweep = true;
      continue;
    }
    if (s == "--sasa") {
      sasa = true;
      continue;
    }
    if (s == "--ns" || s == "--sides") {
      PW_CHECK(i + 1 < a.size(), "bench attention: ", s, " needs a list such as 128,256,512\n", usage);
      std::vector<int64_t>& list = s == "--ns" ? ns : sides;
      list.clear();
      std::stringstream ss(a[++i]);
      std::string item;
      while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        const long long n = std::strtoll(item.c_str(), &end, 10);
        PW_CHECK(end && *end == 0 && n >= 1 && n <= (1 << 20), "bench attention: ", s, ": expected integers in ",
                 "[1, 2^20] separated by commas, got '", a[i], "'");
        list.push_back(n);
      }
      continue;
    }
    set_b = set_b || s == "--batch";
    set_nh = set_nh || s == "--heads";
    set_hd = set_hd || s == "--hd";
    if (s == "--bf16" || s == "--fp32") {
      bf16 = s == "--bf16";
      continue;
    }
    if (s == "--device") {
      PW_CHECK(i + 1 < a.size() && (a[i + 1] == "cpu" || a[i + 1] == "cuda"),
               "bench attention: --device takes cpu or cuda\n", usage);
      cpu = a[++i] == "cpu";
      continue;
    }
    int64_t* dst = s == "--batch" ? &B : s == "--heads" ? &NH : s == "--n" ? &N : s == "--hd" ? &HD
                 : s == "--iters" ? &iters : s == "--threads" ? &threads : s == "--kernel" ? &kernel : nullptr;
    PW_CHECK(dst, "bench attention: unknown option '", s, "'\n", usage);
    PW_CHECK(i + 1 < a.size(), "bench attention: option ", s, " needs a value\n", usage);
    const std::string v = a[++i];
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    PW_CHECK(end && *end == 0 && n >= 1 && n <= (1 << 20), "bench attention: ", s,
             ": expected an integer in [1, 2^20], got '", v, "'");
    *dst = n;
  }
  PW_CHECK(!sweep || cpu, "bench attention: --sweep runs on the CPU; add --device cpu\n", usage);
  PW_CHECK(!sasa || cpu, "bench attention: --sasa runs on the CPU; add --device cpu\n", usage);
  if (sasa) {
    PW_CHECK(kernel % 2 == 1, "bench attention: --kernel must be odd, got ", kernel);
    if (threads > 0) omp_set_num_threads((int)threads);
    bench_sasa_cpu(set_b ? B : 8, set_nh ? NH : 4, set_hd ? HD : 16, kernel, sides, iters);
    return 0;
  }
  if (sweep) {
    if (threads > 0) omp_set_num_threads((int)threads);
    bench_attention_sweep_cpu(set_b ? B : 1, set_nh ? NH : 4, HD, ns, iters);
    return 0;
  }
  if (cpu) {
    if (threads > 0) omp_set_num_threads((int)threads);
    double fwd_ms = 0, bwd_ms = 0;
    const double gflops = bench_attention_cpu(B, NH, N, HD, iters, fwd_ms, bwd_ms);
    std::printf("RESULT device=cpu threads=%d B=%lld NH=%lld N=%lld HD=%lld dtype=fp32 fwd_ms=%.3f bwd_ms=%.3f "
                "gflops=%.2f\n",
                omp_get_max_threads(), (long long)B, (long long)NH, (long long)N, (long long)HD, fwd_ms, bwd_ms,
                gflops);
    return 0;
  }
  if (!cuda::available()) {
    std::cerr << "patchwork: bench attention needs a CUDA device: " << cuda::unavailable_reason()
              << " (--device cpu times the CPU kernel)\n";
    return 2;
  }
  double tflops = 0;
#if PW_HAVE_CUDA
  PW_CHECK(flash_attention_cuda_supports_head_dim((int)HD), "bench attention: --hd ", HD,
           " is not supported (16, 32, 64 or 128)");
  tflops = bench_flash_attention_cuda((int)B, (int)NH, (int)N, (int)HD, bf16, (int)iters);
#endif
  std::printf("RESULT B=%lld NH=%lld N=%lld HD=%lld dtype=%s tflops=%.2f\n", (long long)B, (long long)NH,
              (long long)N, (long long)HD, bf16 ? "bf16" : "fp32", tflops);
  return 0;
}

}  // namespace pw
