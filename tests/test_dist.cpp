// Data-parallel training end to end: build/patchwork under `mpirun --oversubscribe -np
// 2|3` over loopback on a tiny synthetic MNIST-format set. 2 and 3 ranks match one
// process with the same global batch (float32 reduction-order tolerance), two runs with
// the same world size are bit-identical, a rank killed mid-run stops the others within
// dist.timeout_s naming it, and --resume then matches an uninterrupted run bit for bit.
// Skipped (exit 77) when this build has no MPI or mpirun is not on PATH.
#include <algorithm>
#include <memory>
#include <set>

#include "data/loader.h"
#include "dist/tcp_store.h"
#include "dist_util.h"
#include "trainers/config.h"

namespace fs = std::filesystem;
using namespace pw;
using namespace pw::dist_test;

TEST_CASE("2 and 3 ranks train like one process with the same global batch; same world size is bit-identical") {
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  Run one = launch(0, "train " + write_config("one.yaml", config(48)) + " --out " + (d / "one").string());
  REQUIRE_MESSAGE(one.rc == 0, one.output);
  Run two = launch(2, "train " + write_config("two.yaml", config(24)) + " --out " + (d / "two").string());
  REQUIRE_MESSAGE(two.rc == 0, two.output);
  CHECK(two.output.find("global batch 24 x 2 = 48") != std::string::npos);
  Run three = launch(3, "train " + write_config("three.yaml", config(16)) + " --out " + (d / "three").string());
  REQUIRE_MESSAGE(three.rc == 0, three.output);
  Run again = launch(2, "train " + (d / "two.yaml").string() + " --out " + (d / "two_again").string());
  REQUIRE_MESSAGE(again.rc == 0, again.output);

  auto w1 = weights(d / "one"), w2 = weights(d / "two"), w3 = weights(d / "three");
  // 8 SGD steps; the gradients differ only in float32 summation order.
  const double diff2 = max_diff(w1, w2), diff3 = max_diff(w1, w3);
  CAPTURE(diff2);
  CAPTURE(diff3);
  CHECK(diff2 < 1e-6);  // measured: 1.5e-8 (weights up to ~1)
  CHECK(diff3 < 1e-6);  // measured: 1.2e-7
  CHECK(diff2 > 0);  // really different reduction orders: the comparison is not vacuous
  CHECK(bit_identical(w2, weights(d / "two_again")));
  CHECK(!bit_identical(w2, w3));
  // Only rank 0 wrote: one metrics file, one step line per step (8 steps, log_every 1).
  int step_lines = 0;
  std::ifstream f(d / "two" / "metrics.jsonl");
  for (std::string l; std::getline(f, l);) step_lines += l.find("\"lr\"") != std::string::npos;
  CHECK(step_lines == 8);
  // Sharded evaluation of 70 images over 2 and 3 ranks sums to the single-process figures.
  CHECK(metric(d / "two", "test_top1") == doctest::Approx(metric(d / "one", "test_top1")));
  CHECK(metric(d / "three", "test_loss") == doctest::Approx(metric(d / "one", "test_loss")).epsilon(1e-4));
}

// The tiny SimpleViT with the convolutional stem: two 3x3 stride-2 convs, each with a
// BatchNorm (28 -> 14 -> 7), so the batch statistics matter.
std::string stem_config(int64_t batch, bool sync_bn) {
  std::string c = config(batch);
  c.replace(c.find("  patch_size: 7\n"), 16, "  patch_size: 4\n  patch_embed: conv_stem\n");
  return c + "dist:\n  sync_bn: " + (sync_bn ? "true" : "false") + "\n";
}
// Largest |a - b| over the BatchNorm running statistics only.
double running_diff(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  std::map<std::string, Tensor> ra, rb;
  for (auto& [n, t] : a)
    if (n.find("running_") != std::string::npos) {
      ra[n] = t;
      rb[n] = b.at(n);
    }
  REQUIRE(ra.size() == 4);  // two BatchNorms x (mean, var)
  return max_diff(ra, rb);
}

TEST_CASE("SyncBN: 2 ranks x batch 24 with dist.sync_bn train like one process with batch 48; local BN does not") {
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  auto run = [&](int np, int64_t batch, bool sync, const std::string& name) {
    Run r = launch(np, "train " + write_config(name + ".yaml", stem_config(batch, sync)) + " --out " +
                           (d / name).string());
    REQUIRE_MESSAGE(r.rc == 0, r.output);
    return r;
  };
  run(0, 48, false, "bn_one");
  run(0, 48, true, "bn_one_sync");
  Run two = run(2, 24, true, "bn_two_sync");
  CHECK(two.output.find("global batch 24 x 2 = 48, SyncBN") != std::string::npos);
  run(2, 24, false, "bn_two_local");
  run(2, 24, true, "bn_two_sync_again");
  auto one = weights(d / "bn_one"), sync = weights(d / "bn_two_sync"), local = weights(d / "bn_two_local");
  // One process: dist.sync_bn changes nothing (there is nobody to synchronise with).
  CHECK(bit_identical(one, weights(d / "bn_one_sync")));
  // 8 SGD steps: weights and running statistics agree to float32 summation-order noise.
  const double dw = max_diff(one, sync), dr = running_diff(one, sync);
  const double lw = max_diff(one, local), lr = running_diff(one, local);
  CAPTURE(dw);
  CAPTURE(dr);
  CAPTURE(lw);
  CAPTURE(lr);
  CHECK(dw < 1e-5);
  CHECK(dr < 1e-5);
  // Per-rank statistics (24 images each) are really different: the check is not vacuous.
  CHECK(lw > 100 * dw);
  CHECK(lr > 100 * dr);
  CHECK(lr > 1e-4);
  // Deterministic: the same world size gives the same bits.
  CHECK(bit_identical(sync, weights(d / "bn_two_sync_again")));
  // SyncBN's collectives inside the backward interleave with the bucket reductions that
  // dist.overlap starts there (10 KB buckets): still the same bits.
  std::string small = stem_config(24, true) + "  bucket_mb: 0.01\n";
  Run ov = launch(2, "train " + write_config("bn_two_sync_ov.yaml", small) + " --out " + (d / "bn_two_sync_ov").string());
  REQUIRE_MESSAGE(ov.rc == 0, ov.output);
  CHECK(ov.output.find("(dist.overlap on)") != std::string::npos);
  CHECK(bit_identical(sync, weights(d / "bn_two_sync_ov")));
}

// The number of gradient buckets whose reduction started inside the backward, from rank
// 0's last line ("... N of M gradient bucket reductions started during the backward").
std::pair<long, long> overlapped(const std::string& out) {
  const size_t at = out.find(" gradient bucket reductions started during the backward");
  REQUIRE_MESSAGE(at != std::string::npos, out);
  const size_t of = out.rfind(" of ", at), sp = out.rfind(' ', of - 1);
  return {std::stol(out.substr(sp + 1, of - sp - 1)), std::stol(out.substr(of + 4, at - of - 4))};
}

TEST_CASE("dist.overlap: bucket all-reduces started inside the backward give the same bits as after it") {
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  // 10 KB buckets: the 8.5K-parameter model's 34 KB of gradients in several buckets, so
  // most reductions start while the backward still runs.
  auto run = [&](const std::string& name, const std::string& dist) {
    Run r = launch(2, "train " + write_config(name + ".yaml", config(24) + "dist:\n" + dist) + " --out " +
                          (d / name).string());
    REQUIRE_MESSAGE(r.rc == 0, r.output);
    return r;
  };
  Run on = run("ov_on", "  bucket_mb: 0.01\n  overlap: true\n");
  Run off = run("ov_off", "  bucket_mb: 0.01\n  overlap: false\n");
  run("ov_one_bucket", "  overlap: false\n");
  auto [started_on, total_on] = overlapped(on.output);
  auto [started_off, total_off] = overlapped(off.output);
  CHECK(total_on == total_off);
  CHECK(total_on >= 8 * 3);      // 8 steps x at least 3 buckets
  CHECK(started_on >= total_on - 8);  // all but (at most) the last bucket of each step
  CHECK(started_off == 0);
  CHECK(on.output.find("(dist.overlap on)") != std::string::npos);
  CHECK(bit_identical(weights(d / "ov_on"), weights(d / "ov_off")));
  CHECK(bit_identical(weights(d / "ov_on"), weights(d / "ov_one_bucket")));
}

TEST_CASE("torchrun-style launch without MPI: the TCP store's group trains bit-identically to mpirun") {
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  const std::string cfg = write_config("tr.yaml", config(24) + "dist:\n  timeout_s: 60\n");
  Run mpi = launch(2, "train " + cfg + " --out " + (d / "tr_mpi").string());
  REQUIRE_MESSAGE(mpi.rc == 0, mpi.output);
  // Two plain processes with torchrun's variables (no mpirun): rank 0 serves the store.
  const int port = dist::free_tcp_port();
  auto rank_cmd = [&](int r) {
    return "RANK=" + std::to_string(r) + " WORLD_SIZE=2 LOCAL_RANK=" + std::to_string(r) +
           " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " timeout 300 " + PW_BINARY_DIR +
           "/patchwork train " + cfg + " --out " + (d / "tr_store").string() + " > " +
           (d / ("tr_rank" + std::to_string(r) + ".log")).string() + " 2>&1";
  };
  const std::string both = "(" + rank_cmd(1) + ") & " + rank_cmd(0) + "; a=$?; wait $!; b=$?; exit $((a|b))";
  const int status = std::system(both.c_str());
  std::ifstream f0(d / "tr_rank0.log"), f1(d / "tr_rank1.log");
  const std::string out0((std::istreambuf_iterator<char>(f0)), std::istreambuf_iterator<char>()),
      out1((std::istreambuf_iterator<char>(f1)), std::istreambuf_iterator<char>());
  const std::string outs = out0 + out1;
  REQUIRE_MESSAGE(status == 0, outs);
  CHECK(out0.find("2 processes (tcp-store), global batch 24 x 2 = 48") != std::string::npos);
  CHECK(bit_identical(weights(d / "tr_mpi"), weights(d / "tr_store")));
}

TEST_CASE("a rank killed mid-run stops the others within dist.timeout_s, naming it; --resume matches") {
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  // drop_path on: every rank's dropout RNG is in the checkpoint and must resume exactly.
  std::string text = config(24, "  checkpoint_steps: 2\n") + "dist:\n  timeout_s: 20\n";
  text.replace(text.find("drop_path: 0.0"), 14, "drop_path: 0.2");
  const std::string cfg = write_config("fault.yaml", text);
  Run straight = launch(2, "train " + cfg + " --out " + (d / "straight").string());
  REQUIRE_MESSAGE(straight.rc == 0, straight.output);

  Run killed = launch(2, "train " + cfg + " --out " + (d / "killed").string(), "PW_DIST_FAULT=1:5:kill");
  CAPTURE(killed.output);
  CHECK(killed.rc != 0);
  CHECK(killed.seconds < 20 + 30);  // the timeout plus start-up on a loaded 2-core machine
  CHECK(killed.output.find("rank 1") != std::string::npos);
  // The last whole checkpoint (step 4) is there.
  CHECK(fs::path(latest_checkpoint((d / "killed").string())).filename() == "step_00000004");
  // It is mid-epoch (epoch 0 ends after batch 4, but the step checkpoint precedes the
  // epoch's end): another world size is refused, saying why and what to do.
  Run other = launch(3, "train --resume " + (d / "killed").string());
  CHECK(other.rc != 0);
  CHECK_MESSAGE(other.output.find("can only resume at an epoch boundary") != std::string::npos, other.output);
  // The same world size resumes and finishes bit for bit like the uninterrupted run.
  Run resumed = launch(2, "train --resume " + (d / "killed").string());
  REQUIRE_MESSAGE(resumed.rc == 0, resumed.output);
  CHECK(bit_identical(weights(d / "straight"), weights(d / "killed")));
  CHECK(!bit_identical(weights(d / "straight"), weights(d / "two")));  // drop_path made a difference

  // At an epoch boundary another world size is well defined: rank 1 dies in step 6, the
  // latest checkpoint is the end of epoch 1 (step 4), and 3 ranks finish epoch 2 from it.
  std::string every = text;
  every.replace(every.find("checkpoint_every: 0"), 19, "checkpoint_every: 1");
  const std::string cfg_every = write_config("every.yaml", every);
  Run killed2 = launch(2, "train " + cfg_every + " --out " + (d / "killed2").string(), "PW_DIST_FAULT=1:6:kill");
  CHECK(killed2.rc != 0);
  LoadedCheckpoint at = load_checkpoint(latest_checkpoint((d / "killed2").string()));
  REQUIRE(at.state.step == 4);
  CHECK(at.state.epoch == 1);
  CHECK(at.state.batch == 0);
  CHECK(at.state.world_size == 2);
  CHECK(at.state.rank_rngs.size() == 2);
  Run grown = launch(3, "train --resume " + (d / "killed2").string());
  REQUIRE_MESSAGE(grown.rc == 0, grown.output);
  LoadedCheckpoint end = load_checkpoint(latest_checkpoint((d / "killed2").string()));
  CHECK(end.state.epoch == 2);
  CHECK(end.state.world_size == 3);
  CHECK(end.state.rank_rngs.size() == 3);
  // The step count is re-expressed at the new world size: 2 epochs x (192 / 72 = 2) steps.
  // (step_00000004 was rewritten: the old folder stayed whole until the new one was in.)
  CHECK(end.state.step == 4);
  CHECK(grown.output.find("global batch 24 x 3 = 72") != std::string::npos);
}

TEST_CASE("a rank that hangs makes the others stop within dist.timeout_s, naming it") {
  if (!mpi_ready()) return;
  const fs::path d = env().dir.path;
  const std::string cfg = write_config("hang.yaml", config(16, "  checkpoint_steps: 2\n") + "dist:\n  timeout_s: 5\n");
  // Rank 1 stops itself (SIGSTOP) in step 3: ranks 0 and 2 wait 5 s for its gradients.
  Run hung = launch(3, "train " + cfg + " --out " + (d / "hung").string(), "PW_DIST_FAULT=1:3:hang");
  CAPTURE(hung.output);
  CHECK(hung.rc != 0);
  CHECK(hung.seconds < 5 + 30);
  CHECK(hung.output.find("rank(s) 1 did not answer within dist.timeout_s = 5 s") != std::string::npos);
  CHECK(hung.output.find("last whole checkpoint: " + (d / "hung" / "checkpoints" / "step_00000002").string()) !=
        std::string::npos);
  CHECK(fs::path(latest_checkpoint((d / "hung").string())).filename() == "step_00000002");
}

// The distributed sampler in-process (no MPI needed): the ranks' batch b together is the
// single-process batch b of batch_size x world, augmentations included; the shards of an
// epoch are disjoint; without drop_last (evaluation) every sample is read exactly once.
TEST_CASE("distributed sampler: rank shards of the (seed, epoch) order make up the global batch") {
  write_config("sampler.yaml", config(8));
  Config cfg = Config::load((env().dir.path / "sampler.yaml").string());
  std::shared_ptr<Dataset> ds = open_dataset(cfg.section("data"), true);
  TransformConfig tc;
  tc.image_size = 28;
  tc.channels = 1;
  tc.crop_padding = 2;
  tc.hflip = 0.5;
  auto loader = [&](int64_t batch, int rank, int world, bool drop_last) {
    LoaderConfig l;
    l.batch_size = batch;
    l.num_workers = 0;
    l.seed = 7;
    l.drop_last = drop_last;
    l.rank = rank;
    l.world = world;
    return std::make_unique<DataLoader>(ds, Transform(tc, true), l);
  };
  // One sample as bytes: its label and its augmented pixels.
  auto samples = [](const Batch& b) {
    std::vector<std::string> out;
    const int64_t per = b.images.numel() / b.images.size(0);
    for (int64_t j = 0; j < b.images.size(0); ++j)
      out.push_back(std::to_string(b.labels.data<int64_t>()[j]) + ":" +
                    std::string((const char*)(b.images.data<float>() + j * per), (size_t)per * 4));
    return out;
  };
  for (int world : {2, 3}) {
    auto single = loader(8 * world, 0, 1, true);
    std::vector<std::unique_ptr<DataLoader>> ranks;
    for (int r = 0; r < world; ++r) ranks.push_back(loader(8, r, world, true));
    CHECK(ranks[0]->num_batches() == single->num_batches());
    for (int64_t epoch : {0, 3}) {
      single->set_position(epoch, 0);
      for (auto& l : ranks) l->set_position(epoch, 0);
      std::set<std::string> seen;
      Batch b;
      while (single->next(b)) {
        std::vector<std::string> want = samples(b), got;
        for (auto& l : ranks) {
          Batch rb;
          REQUIRE(l->next(rb));
          CHECK(rb.images.size(0) == 8);
          for (auto& s : samples(rb)) got.push_back(s);
        }
        std::sort(want.begin(), want.end());
        std::sort(got.begin(), got.end());
        CHECK(want == got);
        for (auto& s : got) CHECK(seen.insert(s).second);  // disjoint
      }
    }
  }
  // Evaluation: the 70 test samples, batch 10, no drop_last, 3 ranks (24, 23, 23): all read once.
  ds = open_dataset(cfg.section("data"), false);
  std::multiset<int64_t> labels_all, labels_ranks;
  {
    auto one = loader(10, 0, 1, false);
    Batch b;
    while (one->next(b))
      for (int64_t j = 0; j < b.labels.numel(); ++j) labels_all.insert(b.labels.data<int64_t>()[j]);
  }
  int64_t n = 0;
  for (int r = 0; r < 3; ++r) {
    auto l = loader(10, r, 3, false);
    Batch b;
    while (l->next(b)) {
      n += b.labels.numel();
      for (int64_t j = 0; j < b.labels.numel(); ++j) labels_ranks.insert(b.labels.data<int64_t>()[j]);
    }
  }
  CHECK(n == 70);
  CHECK(labels_all == labels_ranks);
}
