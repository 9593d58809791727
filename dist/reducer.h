// DDP's gradient reducer: the parameters and buffers broadcast from rank 0 at the start,
// gradients all-reduced (mean) in buckets of fused flat buffers after the backward,
// buffers (BatchNorm running statistics) re-broadcast from rank 0 every step, as
// PyTorch's DistributedDataParallel does with broadcast_buffers=True.
//
// Buckets hold the parameters in reverse registration order (the order the backward
// produces their gradients), each up to `bucket_mb` MiB. The mean is deterministic and
// independent of the bucket sizes (dist/process_group.h), so dist.bucket_mb is a pure
// speed knob. Not (yet) overlapped with the backward: the reduction runs after it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dist/process_group.h"
#include "nn/module.h"

namespace pw::dist {

class GradReducer {
 public:
  GradReducer(ProcessGroup& pg, const Module& model, double bucket_mb = 25);
  // Rank 0's parameters and buffers to every rank.
  void broadcast_parameters();
  // Every parameter's .grad becomes the mean over ranks. A parameter without a gradient
  // on this rank counts as zeros (its .grad is set to the mean).
  void sync_gradients();
  // Rank 0's buffers to every rank (none: nothing is sent).
  void sync_buffers();

  int64_t param_bytes() const { return param_bytes_; }
  int64_t buffer_bytes() const { return buffer_bytes_; }
  size_t num_buckets() const { return buckets_.size(); }

 private:
  ProcessGroup& pg_;
  std::vector<Param> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::vector<size_t>> buckets_;  // indices into params_
  std::vector<Tensor> flat_;                  // (n) f32 per bucket, on the parameters' device
  int64_t param_bytes_ = 0, buffer_bytes_ = 0;
};

}  // namespace pw::dist
