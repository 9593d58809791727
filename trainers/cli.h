// The patchwork command line, as a library function so tests can drive it.
#pragma once
#include <string>
#include <vector>

namespace pw {

// Runs `patchwork <args...>`; returns the process exit code. Output goes to
// stdout/stderr. User errors print one line "patchwork: error: ..." and return 1.
int run_cli(const std::vector<std::string>& args);

}  // namespace pw
