// Helpers of the data-parallel tests (test_dist.cpp, test_dist_nccl.cpp): a tiny synthetic
// MNIST-format set, configs, launching build/patchwork under mpirun, comparing weights.
#pragma once
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include "dist/process_group.h"
#include "io/safetensors.h"
#include "test_data_util.h"
#include "tests/skip.h"
#include "trainers/checkpoint.h"

namespace pw::dist_test {
namespace fs = std::filesystem;

// Class k: stripes of period k+2 (vertical for k < 5, else horizontal) plus noise.
inline void write_split(const fs::path& dir, const char* prefix, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> px, lab;
  for (int i = 0; i < n; ++i) {
    int k = (int)(rng() % 10), period = k < 5 ? k + 2 : k - 3, phase = (int)(rng() % period);
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x)
        px.push_back((uint8_t)((((k < 5 ? x : y) + phase) % period < period / 2 ? 200 : 50) + rng() % 40));
    lab.push_back((uint8_t)k);
  }
  test::write_bytes((dir / (std::string(prefix) + "-images-idx3-ubyte")).string(),
                    test::idx_bytes({(uint32_t)n, 28, 28}, px));
  test::write_bytes((dir / (std::string(prefix) + "-labels-idx1-ubyte")).string(), test::idx_bytes({(uint32_t)n}, lab));
}

struct Env {
  test::TempDir dir;
  Env() {
    write_split(dir.path, "train", 192, 1);
    write_split(dir.path, "t10k", 70, 2);  // 70: the ranks' evaluation shards differ in size
  }
};
inline Env& env() {
  static Env e;
  return e;
}

// A tiny SimpleViT; `batch` per process; SGD so that a float32 difference in the
// gradients stays a difference of the same size in the weights.
inline std::string config(int64_t batch, const std::string& extra = "") {
  std::string c = "model:\n  type: simple_vit\n  image_size: 28\n  patch_size: 7\n  channels: 1\n  num_classes: 10\n"
                  "  dim: 32\n  depth: 1\n  heads: 2\n  dim_head: 16\n  mlp_dim: 32\n  drop_path: 0.0\n"
                  "data:\n  dataset: mnist\n  root: " + env().dir.path.string() +
                  "\n  num_workers: 1\n  crop_padding: 1\n"
                  "train:\n  device: cpu\n  epochs: 2\n  batch_size: " + std::to_string(batch) +
                  "\n  optimizer: sgd\n  lr: 0.05\n  warmup_epochs: 0.5\n  threads: 1\n  eval_every: 0\n"
                  "  checkpoint_every: 0\n  log_every: 1\n" + extra;
  return c;
}

inline std::string write_config(const std::string& name, const std::string& text) {
  fs::path p = env().dir.path / name;
  std::ofstream(p) << text;
  return p.string();
}

inline bool mpi_ready() {
  if (!dist::have_mpi()) {
    test::note_skipped("this build has no MPI (-DPW_MPI=AUTO did not find it)");
    return false;
  }
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    test::note_skipped("mpirun is not on PATH (apt-get install openmpi-bin)");
    return false;
  }
  return true;
}

struct Run {
  int rc = -1;
  double seconds = 0;
  std::string output;
};

// `np` = 0: the plain single process. Output (stdout and stderr) is returned.
inline Run launch(int np, const std::string& args, const std::string& env_vars = "") {
  const fs::path log = env().dir.path / "launch.log";
  std::string cmd = env_vars + " timeout 300 ";
  if (np > 0)
    cmd += "mpirun --oversubscribe --allow-run-as-root -np " + std::to_string(np) +
           " --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -x PW_DIST_FAULT ";
  cmd += std::string(PW_BINARY_DIR) + "/patchwork " + args + " > " + log.string() + " 2>&1";
  auto t0 = std::chrono::steady_clock::now();
  int status = std::system(cmd.c_str());
  Run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream f(log);
  r.output.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

inline std::map<std::string, Tensor> weights(const fs::path& run) {
  return load_checkpoint(run.string()).model;
}

// Largest |a - b| over every tensor; the names must match.
inline double max_diff(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (auto& [n, t] : a) {
    REQUIRE(b.count(n));
    const Tensor& u = b.at(n);
    REQUIRE(t.numel() == u.numel());
    if (t.dtype() != DType::F32) continue;
    const float *p = t.data<float>(), *q = u.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, (double)std::fabs(p[i] - q[i]));
  }
  return m;
}
inline bool bit_identical(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (auto& [n, t] : a) {
    if (!b.count(n) || b.at(n).numel() != t.numel() || b.at(n).dtype() != t.dtype()) return false;
    if (std::memcmp(t.raw(), b.at(n).raw(), (size_t)t.numel() * dtype_size(t.dtype())) != 0) return false;
  }
  return true;
}

// The last evaluation line of a run's metrics.jsonl, as a map of its numbers.
inline double metric(const fs::path& run, const std::string& key) {
  std::ifstream f(run / "metrics.jsonl");
  std::string line, last;
  while (std::getline(f, line))
    if (line.find("\"" + key + "\"") != std::string::npos) last = line;
  REQUIRE_MESSAGE(!last.empty(), "no ", key, " in ", (run / "metrics.jsonl").string());
  size_t at = last.find("\"" + key + "\": ") + key.size() + 4;
  return std::stod(last.substr(at));
}

}  // namespace pw::dist_test
