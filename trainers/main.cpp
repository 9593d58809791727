// patchwork: the command-line entry point.
#include <cstring>
#include <iostream>
#include <string>

#include "autograd/check.h"
#include "kernels/gemm/gemm.h"

namespace {

const char* kUsage =
    "usage: patchwork <command> [args]\n"
    "commands:\n"
    "  bench gemm        GEMM GFLOP/s at ViT shapes (float32)\n"
    "  help              this text\n";

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string cmd = argc > 1 ? argv[1] : "help";
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (cmd == "bench") {
      std::string what = argc > 2 ? argv[2] : "";
      if (what == "gemm") {
        pw::bench_gemm(std::cout);
        return 0;
      }
      std::cerr << "patchwork: unknown benchmark '" << what << "' (known: gemm)\n" << kUsage;
      return 2;
    }
    std::cerr << "patchwork: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  } catch (const pw::Error& e) {
    std::cerr << "patchwork: error: " << e.what() << "\n";
    return 1;
  }
}
