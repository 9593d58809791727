// Scanning a data set for unreadable samples (`patchwork data check`): every
// sample is read and decoded once, in parallel, and each failure is listed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pw {

struct BadSample {
  int64_t index;       // in [0, size)
  std::string path;    // the file, or "sample <index>" where the data set has none
  std::string reason;  // one sentence
};

// Reads every sample of `ds` with `threads` threads (0 = all cores); returns
// the ones whose get() throws pw::Error, sorted by index. `progress`, when
// given, is called now and then from one thread with the samples done so far.
std::vector<BadSample> check_dataset(const Dataset& ds, int threads = 0,
                                     const std::function<void(int64_t done)>& progress = {});

}  // namespace pw
