// Helpers for the data tests: a self-deleting temp folder and writers of
// every on-disk format the readers accept (IDX raw/gz, CIFAR binaries).
#pragma once
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/check.h"

namespace pw::test {

// doctest::Contains for a std::string built at run time (paths, offsets).
inline doctest::Contains contains(const std::string& s) { return doctest::Contains(doctest::String(s.c_str())); }

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pw_data_XXXXXX").string();
    PW_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes, bool gz = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    PW_CHECK(f, "gzopen ", path);
    if (!bytes.empty()) gzwrite(f, bytes.data(), (unsigned)bytes.size());
    gzclose(f);
  } else {
    FILE* f = std::fopen(path.c_str(), "wb");
    PW_CHECK(f, "fopen ", path);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  PW_CHECK(f, "fopen ", path);
  std::vector<uint8_t> b;
  int ch;
  while ((ch = std::fgetc(f)) != EOF) b.push_back((uint8_t)ch);
  std::fclose(f);
  return b;
}

// An IDX ubyte file: 00 00 08 ndim, big-endian dims, data.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, (uint8_t)dims.size()};
  for (uint32_t d : dims) {
    b.push_back((uint8_t)(d >> 24));
    b.push_back((uint8_t)(d >> 16));
    b.push_back((uint8_t)(d >> 8));
    b.push_back((uint8_t)d);
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// Deterministic "random" bytes that are never all equal.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (uint8_t)(s >> 24);
  }
  return v;
}

}  // namespace pw::test
