// SyncBN over a process group (dist.sync_bn): the BatchNormSync hook (kernels/norm/norm.h)
// that every BatchNorm in training mode calls, implemented with the group's host
// collectives. Deterministic: forward all-gathers each rank's per-channel (count, mean,
// M2) and every rank combines them in rank order 0..W-1 (combine_moments, exact pairwise
// update, double); backward sums the per-channel (sum dy, sum dy * xhat) in rank order in
// double (ProcessGroup::allreduce_sum). So the statistics are bit-identical on every rank
// and in every run with the same world size.
#pragma once
#include "dist/process_group.h"
#include "kernels/norm/norm.h"

namespace pw::dist {

class GroupBatchNormSync final : public BatchNormSync {
 public:
  explicit GroupBatchNormSync(ProcessGroup& pg) : pg_(pg) {}
  void combine_moments(std::vector<double>& moments) override;
  void sum(std::vector<double>& sums) override;
  int64_t calls = 0;  // collectives made (forward + backward)

 private:
  ProcessGroup& pg_;
};

}  // namespace pw::dist
