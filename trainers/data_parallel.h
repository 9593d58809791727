// The trainer's side of data-parallel training (docs/distributed.md): the process group
// from the launcher (dist/process_group.h), DDP's reducer (dist/reducer.h), and what
// train() does differently with more than one process: rank 0 writes logs and
// checkpoints, every rank's dropout RNG differs and is checkpointed, a resume checks
// the world size. With one process every call here is a no-op and training is unchanged.
#pragma once
#include <memory>
#include <string>

#include "dist/process_group.h"
#include "dist/reducer.h"
#include "dist/sync_bn.h"
#include "trainers/checkpoint.h"
#include "trainers/config.h"

namespace pw {

struct DataParallel {
  dist::ProcessGroup& pg;
  std::unique_ptr<dist::GradReducer> reducer;
  std::unique_ptr<dist::GroupBatchNormSync> bn_sync;  // dist.sync_bn with more than one process
  double bucket_mb = 25;
  bool sync_bn = false;
  bool overlap = true;  // dist.overlap: bucket all-reduces start inside the backward (MPI)
  int64_t bytes_at_start = 0;  // pg.bytes_sent after the start-up broadcast

  // Starts the process group the launcher asks for (dist.timeout_s); world 1 without one.
  DataParallel(const Config& cfg, Device device);
  ~DataParallel();  // uninstalls the SyncBN hook
  bool active() const { return pg.world() > 1; }
  bool writes() const { return pg.rank() == 0; }  // logs, metrics, checkpoints

  // After the model (and a resumed checkpoint) is loaded: rank 0's weights and buffers to
  // every rank; each rank's RNG (the checkpoint's for this rank, else a rank-specific
  // stream; rank 0 keeps the single-process one). A checkpoint of another world size is
  // accepted at an epoch boundary (the step count becomes epoch x the new steps per
  // epoch, so the schedule goes on at the same point) and refused mid-epoch. With
  // dist.sync_bn (and more than one process) installs the SyncBN hook every BatchNorm
  // uses in training (nn/layers.h set_batch_norm_sync).
  void start(Module& model, const LoadedCheckpoint& ck, TrainState& st, int64_t steps_per_epoch,
             const std::string& resume_dir);
  // Between the backward and the optimizer: gradients averaged, buffers from rank 0.
  // `step`: the step being taken (1-based), `last_ckpt`: quoted if a rank fails.
  void after_backward(int64_t step, const std::string& last_ckpt);
  // Before a checkpoint: every rank's RNG state into st (collective).
  void gather_state(TrainState& st);
  // "2 processes (mpi), global batch 32 x 2 = 64" ("" with one process).
  std::string describe(int64_t batch_size) const;
  // "rank 0 sent 68.2 KB per optimizer step (parameters: 34.1 KB as float32)" over `steps`.
  std::string traffic(int64_t steps) const;
};

}  // namespace pw
