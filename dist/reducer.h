// DDP's gradient reducer: the parameters and buffers broadcast from rank 0 at the start,
// gradients all-reduced (mean) in buckets of fused flat buffers, buffers (BatchNorm
// running statistics) re-broadcast from rank 0 every step, as PyTorch's
// DistributedDataParallel does with broadcast_buffers=True.
//
// Buckets hold the parameters in reverse registration order (the order the backward
// produces their gradients), each up to `bucket_mb` MiB. The mean is deterministic and
// independent of the bucket sizes (dist/process_group.h), so dist.bucket_mb is a pure
// speed knob.
//
// Overlap (dist.overlap, where the backend's allreduce_mean_async really is nonblocking:
// MPI): attach() installs the autograd gradient-ready hook (autograd/function.h). When a
// parameter's gradient is final it is copied into its bucket; when every parameter of a
// bucket is in, that bucket's reduction starts (nonblocking point-to-point, tag per
// bucket) while the backward goes on, and every later gradient-ready event polls the
// outstanding buckets (MPI progresses only inside MPI calls). sync_gradients() then
// starts the buckets that were not complete (parameters without a gradient count as
// zeros), waits for all, and copies the means back into the .grads. Each element's
// arithmetic is the same as without overlap, so the results are bit-identical.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dist/process_group.h"
#include "nn/module.h"

namespace pw::dist {

class GradReducer {
 public:
  GradReducer(ProcessGroup& pg, const Module& model, double bucket_mb = 25);
  ~GradReducer();  // detaches the hook
  // Rank 0's parameters and buffers to every rank.
  void broadcast_parameters();
  // Start reducing buckets during the backward (installs the gradient-ready hook; one
  // reducer at a time). A no-op where the backend cannot overlap (overlapping() false).
  void attach_overlap();
  bool overlapping() const { return attached_; }
  // Every parameter's .grad becomes the mean over ranks. A parameter without a gradient
  // on this rank counts as zeros (its .grad is set to the mean).
  void sync_gradients();
  // Rank 0's buffers to every rank (none: nothing is sent).
  void sync_buffers();

  int64_t param_bytes() const { return param_bytes_; }
  int64_t buffer_bytes() const { return buffer_bytes_; }
  size_t num_buckets() const { return buckets_.size(); }
  // Buckets whose reduction started inside the backward, summed over the steps so far.
  int64_t buckets_overlapped() const { return overlapped_; }

 private:
  void on_grad_ready(const Tensor& leaf);
  void fill(size_t k);  // parameter k's gradient (or zeros) into its bucket
  void launch(size_t bi);

  ProcessGroup& pg_;
  std::vector<Param> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::vector<size_t>> buckets_;  // indices into params_
  std::vector<Tensor> flat_;                  // (n) f32 per bucket, on the parameters' device
  std::vector<size_t> bucket_of_, offset_of_;  // per parameter: its bucket, its byte offset there
  std::unordered_map<const void*, size_t> index_;  // TensorImpl* -> parameter index
  // Per step: which parameters' gradients are in their bucket, how many per bucket, the
  // buckets' reductions in flight.
  std::vector<char> filled_;
  std::vector<size_t> ready_;
  std::vector<std::unique_ptr<ProcessGroup::Work>> work_;
  bool attached_ = false;
  int64_t overlapped_ = 0;
  int64_t param_bytes_ = 0, buffer_bytes_ = 0;
};

}  // namespace pw::dist
