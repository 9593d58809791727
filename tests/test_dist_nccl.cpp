// The NCCL backend on the GPUs present: 2 ranks (one GPU each) train the tiny model of
// test_dist.cpp with train.device: cuda and match one GPU process with the same global
// batch within float32 tolerance; two runs are bit-identical. Skipped (exit 77) unless
// this build has NCCL, mpirun is on PATH and at least 2 CUDA devices are present
// (scripts/gpu_check.sh runs it on a multi-GPU machine).
#include "dist_util.h"
#include "runtime/cuda/device_info.h"

namespace fs = std::filesystem;
using namespace pw;
using namespace pw::dist_test;

TEST_CASE("NCCL: 2 GPU ranks train like one GPU with the same global batch") {
  if (!dist::have_nccl()) {
    test::note_skipped("this build has no NCCL (needs -DPW_CUDA=ON and the toolkit's libnccl)");
    return;
  }
  if (cuda_device_count() < 2) {
    test::note_skipped("fewer than 2 CUDA devices");
    return;
  }
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  auto gpu = [](std::string c) { return c.replace(c.find("device: cpu"), 11, "device: cuda"); };
  Run one = launch(0, "train " + write_config("g1.yaml", gpu(config(48))) + " --out " + (d / "g1").string());
  REQUIRE_MESSAGE(one.rc == 0, one.output);
  Run two = launch(2, "train " + write_config("g2.yaml", gpu(config(24))) + " --out " + (d / "g2").string());
  REQUIRE_MESSAGE(two.rc == 0, two.output);
  CHECK(two.output.find("(nccl)") != std::string::npos);
  Run again = launch(2, "train " + (d / "g2.yaml").string() + " --out " + (d / "g2b").string());
  REQUIRE_MESSAGE(again.rc == 0, again.output);
  const double diff = max_diff(weights(d / "g1"), weights(d / "g2"));
  CAPTURE(diff);
  CHECK(diff < 2e-5);
  CHECK(bit_identical(weights(d / "g2"), weights(d / "g2b")));
}
