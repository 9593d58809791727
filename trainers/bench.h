// `patchwork bench train CONFIG`: training throughput of a config's model on a
// fixed synthetic batch, with a per-op time breakdown (autograd/profile.h).
#pragma once
#include <string>
#include <vector>

namespace pw {

// args: the full command line ("patchwork", "bench", "train", CONFIG, options...).
// Prints the report to stdout; returns the process exit code.
int cmd_bench_train(const std::vector<std::string>& args);

}  // namespace pw
