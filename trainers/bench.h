// `patchwork bench train CONFIG`: training throughput of a config's model on a
// fixed synthetic batch, with a per-op time breakdown (autograd/profile.h).
#pragma once
#include <string>
#include <vector>

namespace pw {

// args: the full command line ("patchwork", "bench", "train", CONFIG, options...).
// Prints the report to stdout; returns the process exit code.
int cmd_bench_train(const std::vector<std::string>& args);

// `patchwork bench attention [--batch B] [--heads NH] [--n N] [--hd HD] [--bf16|--fp32]
// [--iters I]`: fused flash attention forward + backward on CUDA (defaults 8, 12, 1024, 64,
// bf16, 20). Prints "RESULT B=.. NH=.. N=.. HD=.. dtype=.. tflops=.." (scripts/gpu_check.sh
// parses it). args: the full command line. Returns 0, 1 on a bad option, 2 without a device.
int cmd_bench_attention(const std::vector<std::string>& args);

}  // namespace pw
