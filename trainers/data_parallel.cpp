#include "trainers/data_parallel.h"

#include <cstdio>
#include <cstring>

#include "autograd/function.h"
#include "nn/layers.h"
#include "runtime/check.h"

namespace pw {

namespace {

void register_dist_keys(Schema& s) {
  s.add("dist", "timeout_s",
        KeySpec::Float(300, "data-parallel runs: seconds a collective may wait for another rank before every rank "
                            "stops, naming the missing rank")
            .gt(0)
            .runtime());
  s.add("dist", "bucket_mb",
        KeySpec::Float(25, "data-parallel runs: MiB of gradients per fused all-reduce bucket (speed only; the "
                           "result does not depend on it)")
            .gt(0)
            .runtime());
  s.add("dist", "overlap",
        KeySpec::Bool(true, "data-parallel runs: start each gradient bucket's all-reduce during the backward, as soon "
                            "as its gradients are final (MPI; bit-identical to false, which reduces after the backward)")
            .runtime());
  s.add("dist", "sync_bn",
        KeySpec::Bool(false, "data-parallel runs: every BatchNorm in training normalises with the statistics of the "
                             "global batch (all ranks), as torch.nn.SyncBatchNorm; false: each rank's own batch"));
}
ConfigKeys dist_keys(register_dist_keys);

// Rank r > 0's dropout stream of a fresh run (rank 0 keeps the single-process one).
Generator rank_generator(uint64_t seed, int rank) {
  return Generator(seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)rank) ^ 0xD1B54A32D192ED03ull);
}

}  // namespace

DataParallel::DataParallel(const Config& cfg, Device device)
    : pg(dist::init_process_group(device, cfg.get_float("dist.timeout_s"))),
      bucket_mb(cfg.get_float("dist.bucket_mb")),
      sync_bn(cfg.get_bool("dist.sync_bn")),
      overlap(cfg.get_bool("dist.overlap")) {}

DataParallel::~DataParallel() {
  if (bn_sync && batch_norm_sync() == bn_sync.get()) set_batch_norm_sync(nullptr);
}

void DataParallel::start(Module& model, const LoadedCheckpoint& ck, TrainState& st, int64_t spe,
                         const std::string& resume_dir) {
  const int W = pg.world();
  if (ck.has_state) {
    const int64_t W0 = ck.state.world_size;
    if (W0 != W) {
      PW_CHECK(ck.state.batch == 0, "--resume ", resume_dir, ": the checkpoint (", ck.dir, ") was written by ", W0,
               " process", W0 == 1 ? "" : "es", " mid-epoch (epoch ", ck.state.epoch, ", batch ", ck.state.batch,
               "); this run has ", W, ". A different world size changes the global batch, so it can only resume at an "
               "epoch boundary: resume with ", W0, " process", W0 == 1 ? "" : "es", " (mpirun -np ", W0,
               "), or from a checkpoint written at the end of an epoch (train.checkpoint_every)");
      st.step = ck.state.epoch * spe;
      if (pg.rank() == 0)
        std::printf("patchwork: resuming a %lld-process checkpoint with %d processes at the start of epoch %lld: "
                    "the global batch changes, the step count becomes %lld\n",
                    (long long)W0, W, (long long)ck.state.epoch + 1, (long long)st.step);
    }
    if (pg.rank() < (int)ck.state.rank_rngs.size()) default_generator() = ck.state.rank_rngs[(size_t)pg.rank()];
    else if (pg.rank() > 0) default_generator() = rank_generator(default_generator().seed + (uint64_t)st.epoch, pg.rank());
  } else if (pg.rank() > 0) {
    default_generator() = rank_generator(default_generator().seed, pg.rank());
  }
  st.world_size = W;
  if (!active()) return;
  reducer = std::make_unique<dist::GradReducer>(pg, model, bucket_mb);
  if (overlap) reducer->attach_overlap();  // where the backend can (MPI)
  if (sync_bn) {  // every BatchNorm's training statistics over all ranks (nn/layers.h)
    bn_sync = std::make_unique<dist::GroupBatchNormSync>(pg);
    set_batch_norm_sync(bn_sync.get());
  }
  NoGrad ng;
  reducer->broadcast_parameters();
  bytes_at_start = pg.bytes_sent;
}

void DataParallel::after_backward(int64_t step, const std::string& last_ckpt) {
  if (!active()) return;
  dist::maybe_inject_fault(pg.rank(), step);
  pg.context = "step " + std::to_string(step) + "; last whole checkpoint: " + (last_ckpt.empty() ? "none" : last_ckpt);
  NoGrad ng;
  reducer->sync_gradients();
  reducer->sync_buffers();
}

void DataParallel::gather_state(TrainState& st) {
  st.world_size = pg.world();
  st.rank_rngs.clear();
  if (!active()) return;
  const Generator& g = default_generator();
  std::string mine(sizeof(uint64_t) * 2, '\0');
  std::memcpy(&mine[0], &g.seed, 8);
  std::memcpy(&mine[8], &g.offset, 8);
  for (const std::string& s : pg.allgather(mine)) {
    PW_CHECK(s.size() == 16, "gather_state: a rank sent ", s.size(), " bytes of RNG state");
    Generator r;
    std::memcpy(&r.seed, s.data(), 8);
    std::memcpy(&r.offset, s.data() + 8, 8);
    st.rank_rngs.push_back(r);
  }
}

std::string DataParallel::describe(int64_t batch_size) const {
  if (!active()) return "";
  return std::to_string(pg.world()) + " processes (" + pg.backend() + "), global batch " +
         std::to_string(batch_size) + " x " + std::to_string(pg.world()) + " = " +
         std::to_string(batch_size * pg.world()) + (bn_sync ? ", SyncBN" : "");
}

std::string DataParallel::traffic(int64_t steps) const {
  if (!active() || steps <= 0) return "";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "rank %d sent %.1f KB per optimizer step on average (the model's parameters: %.1f KB as float32, "
                "buffers %.1f KB); %lld of %lld gradient bucket reductions started during the backward (dist.overlap %s)",
                pg.rank(), (double)(pg.bytes_sent - bytes_at_start) / (double)steps / 1024.0, (double)reducer->param_bytes() / 1024.0,
                (double)reducer->buffer_bytes() / 1024.0, (long long)reducer->buckets_overlapped(),
                (long long)(steps * (int64_t)reducer->num_buckets()),
                reducer->overlapping() ? "on" : (overlap ? "on, but this backend cannot overlap" : "off"));
  return buf;
}

}  // namespace pw
