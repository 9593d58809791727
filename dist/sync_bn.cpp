#include "dist/sync_bn.h"

#include <cstring>
#include <string>

#include "runtime/check.h"

namespace pw::dist {

void GroupBatchNormSync::combine_moments(std::vector<double>& moments) {
  ++calls;
  const std::string mine((const char*)moments.data(), moments.size() * sizeof(double));
  std::vector<std::string> all = pg_.allgather(mine);
  std::vector<std::vector<double>> parts(all.size());
  for (size_t r = 0; r < all.size(); ++r) {
    PW_CHECK(all[r].size() == mine.size(), "SyncBN (dist.sync_bn): rank ", r, " sent ", all[r].size() / 8,
             " batch statistics, this rank ", moments.size(),
             "; the ranks run different models or are out of step (every rank must run the same BatchNorms in the "
             "same order)");
    parts[r].resize(moments.size());
    std::memcpy(parts[r].data(), all[r].data(), all[r].size());
  }
  moments = pw::combine_moments(parts);
}

void GroupBatchNormSync::sum(std::vector<double>& sums) {
  ++calls;
  pg_.allreduce_sum(sums);
}

}  // namespace pw::dist
