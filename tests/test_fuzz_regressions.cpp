// Replays every committed fuzz input through the fuzz targets' own code
// (tests/fuzz/targets.h) in the normal suite, with the build's libraries: the
// seed corpora (tests/fuzz/corpus/<target>/) and every input that once crashed
// a target (tests/fuzz/regressions/<target>/, each with its fix). A crash here
// is a regression; under scripts/sanitize.sh so is a sanitizer report.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "tests/fuzz/targets.h"

namespace fs = std::filesystem;

namespace {

using Target = void (*)(const uint8_t*, size_t);
const std::map<std::string, Target> kTargets = {{"fuzz_config", pw::fuzz::config},
                                                {"fuzz_safetensors", pw::fuzz::safetensors},
                                                {"fuzz_idx", pw::fuzz::idx},
                                                {"fuzz_cifar", pw::fuzz::cifar},
                                                {"fuzz_image", pw::fuzz::image},
                                                {"fuzz_wav", pw::fuzz::wav}};

// Runs every file of <PW_SOURCE_DIR>/tests/fuzz/<kind>/<target>/; returns how many.
int replay(const std::string& kind, const std::string& target) {
  fs::path dir = fs::path(PW_SOURCE_DIR) / "tests/fuzz" / kind / target;
  if (!fs::is_directory(dir)) return 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    INFO(p.string());
    std::ifstream f(p, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    kTargets.at(target)(bytes.data(), bytes.size());
  }
  return (int)files.size();
}

}  // namespace

TEST_CASE("every fuzz target has a seed corpus, and replays it and its regressions without crashing") {
  for (const auto& entry : kTargets) {
    const std::string& target = entry.first;
    CAPTURE(target);
    CHECK(fs::is_regular_file(fs::path(PW_SOURCE_DIR) / "tests/fuzz" / (target + ".cpp")));
    CHECK(replay("corpus", target) > 0);
    replay("regressions", target);
  }
  std::error_code ec;
  fs::remove_all(fs::path(pw::fuzz::write_input(nullptr, 0, "x")).parent_path(), ec);
}
