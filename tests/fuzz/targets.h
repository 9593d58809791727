// What each libFuzzer target does with one input, shared by the targets
// (tests/fuzz/fuzz_<name>.cpp) and by test_fuzz_regressions, which replays the
// committed corpora and crash inputs through the same code in the normal suite.
//
// The rule every target checks: any input is answered by a pw::Error or a
// result, never a crash, a sanitizer report, an allocation beyond libFuzzer's
// limit, or a broken invariant (__builtin_trap). The readers take paths, so
// each input is written to a per-process file under $TMPDIR (/tmp) first.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/cifar.h"
#include "data/image_folder.h"
#include "data/mnist.h"
#include "data/wav.h"
#include "io/safetensors.h"
#include "runtime/check.h"
#include "trainers/config.h"

namespace pw::fuzz {

// Writes the input to <dir>/<name> (replacing it) and returns the path.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& name) {
  static const std::string dir = [] {
    const char* t = std::getenv("TMPDIR");
    std::string d = std::string(t && *t ? t : "/tmp") + "/pw_fuzz_" + std::to_string(::getpid());
    ::mkdir(d.c_str(), 0700);
    return d;
  }();
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) std::abort();
  return path;
}

// The YAML config loader with the process-wide schema (every registered model
// and data set); a config it accepts must come back the same through to_yaml().
inline void config(const uint8_t* data, size_t size) {
  Config c = Config::defaults();
  try {
    c = Config::parse(std::string((const char*)data, size), "fuzz.yaml");
  } catch (const Error&) {
    return;
  }
  const std::vector<std::string> all = c.schema().sections();
  Config back = Config::parse(c.to_yaml(), "to_yaml");
  if (back.canonical(all, true) != c.canonical(all, true)) __builtin_trap();
}

// load_safetensors.
inline void safetensors(const uint8_t* data, size_t size) {
  std::string path = write_input(data, size, "x.safetensors");
  try {
    SafetensorsFile f = load_safetensors(path);
    for (auto& [name, t] : f.tensors)
      if (t.numel() < 0) __builtin_trap();
  } catch (const Error&) {
  }
}

// read_idx, as a labels file (1-d) and as an images file (3-d); gzip or plain.
inline void idx(const uint8_t* data, size_t size) {
  std::string path = write_input(data, size, "x.idx");
  for (int ndim : {1, 3}) {
    try {
      IdxArray a = read_idx(path, ndim);
      uint64_t n = 1;
      for (int64_t d : a.dims) n *= (uint64_t)d;
      if ((int)a.dims.size() != ndim || n != a.data.size()) __builtin_trap();
    } catch (const Error&) {
    }
  }
}

// The CIFAR-10 and CIFAR-100 readers on the input as test_batch.bin / test.bin,
// then every sample read back.
inline void cifar(const uint8_t* data, size_t size) {
  auto read_all = [](const Dataset& ds) {
    for (int64_t i = 0; i < ds.size(); ++i) {
      Sample s = ds.get(i);
      if (s.label != ds.label(i) || s.label < 0 || s.label >= ds.num_classes() || s.image.data.size() != 3072)
        __builtin_trap();
    }
  };
  std::string path = write_input(data, size, "test_batch.bin");
  std::string dir = path.substr(0, path.rfind('/'));
  try {
    read_all(CIFAR10(dir, false));
  } catch (const Error&) {
  }
  write_input(data, size, "test.bin");
  try {
    read_all(CIFAR100(dir, false));
  } catch (const Error&) {
  }
}

// decode_image_file, the image-folder decoder.
inline void image(const uint8_t* data, size_t size) {
  std::string path = write_input(data, size, "x.img");
  try {
    Image img = decode_image_file(path);
    if (img.c != 3 || img.h <= 0 || img.w <= 0 || (int64_t)img.data.size() != img.h * img.w * 3) __builtin_trap();
  } catch (const BadSampleError&) {
  }
}

// read_wav, then the result resampled to 16 kHz (the audio data sets' path).
inline void wav(const uint8_t* data, size_t size) {
  std::string path = write_input(data, size, "x.wav");
  try {
    Audio a = read_wav(path);
    if (a.channels <= 0 || a.sample_rate <= 0 || a.samples.empty()) __builtin_trap();
    for (float v : a.samples)
      if (!std::isfinite(v)) __builtin_trap();
    // Keep the fuzzer's inputs fast: resampling long clips says nothing new.
    if (a.samples.size() <= 4096) {
      std::vector<float> y = resample(a.samples, a.sample_rate, 16000);
      if ((int64_t)y.size() != (16000 * (int64_t)a.samples.size() + a.sample_rate - 1) / a.sample_rate)
        __builtin_trap();
    }
  } catch (const BadSampleError&) {
  } catch (const Error&) {
  }
}

}  // namespace pw::fuzz
