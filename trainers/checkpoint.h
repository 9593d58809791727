// Checkpoints: model weights in safetensors (PyTorch/timm open them) plus a
// training-state file with everything a bit-exact resume needs.
//
//   RUN/checkpoints/step_00000500/model.safetensors   weights and buffers
//   RUN/checkpoints/step_00000500/state.safetensors   optimizer moments, EMA,
//        and in its metadata: step, epoch, batch, RNG state, config hash, config
//   RUN/checkpoints/latest                            "step_00000500"
//
// A checkpoint is written into "step_N.tmp", each file fsynced, then the folder
// is renamed and only then is `latest` replaced (atomically). A kill at any
// moment leaves `latest` naming a whole checkpoint.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "nn/module.h"
#include "trainers/optim.h"

namespace pw {

struct TrainState {
  int64_t step = 0;    // optimizer steps done
  int64_t epoch = 0;   // epoch of the next batch
  int64_t batch = 0;   // index within that epoch of the next batch
  Generator rng;       // the default generator (dropout, drop-path)
  // Data-parallel runs: the world size that wrote it and every rank's generator, by rank
  // (the loader position above is the same on every rank). 1 and empty for one process.
  int64_t world_size = 1;
  std::vector<Generator> rank_rngs;
  uint64_t config_hash = 0;
  std::string config_yaml;  // the resolved config the run was started with
};

// Writes checkpoint `state.step` under run_dir/checkpoints and keeps the newest `keep`.
// Returns the checkpoint folder.
std::string save_checkpoint(const std::string& run_dir, const Module& model, const Optimizer& opt,
                            const Ema* ema, const TrainState& state, int keep = 2);

// The folder `latest` names under run_dir/checkpoints, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);

struct LoadedCheckpoint {
  std::string dir;
  std::map<std::string, Tensor> model;             // weights and buffers by name
  std::vector<std::pair<std::string, Tensor>> optimizer, ema;
  TrainState state;
  bool has_state = false;
};

// `path`: a run folder, a checkpoint folder, or a model .safetensors file
// (weights only). Every problem is a pw::Error naming the file and the fix.
LoadedCheckpoint load_checkpoint(const std::string& path);

}  // namespace pw
