// safetensors: the tensor file format PyTorch, timm and Hugging Face open
// (https://github.com/huggingface/safetensors). Checkpoints and exported
// weights are written in it, so `safetensors.torch.load_file` reads our files
// and we read theirs.
//
// Layout:  [u64 little-endian N][N bytes of JSON header][data bytes]
//   header: {"__metadata__": {str: str},                      (optional)
//            "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//   offsets are relative to the start of the data bytes; each tensor is stored
//   contiguous, row-major, little-endian. We write tensors sorted by name,
//   packed with no gaps, and pad the header with spaces to a multiple of 8.
//
// Reading trusts nothing: every size, offset and string is checked before use
// and every failure is a pw::Error naming the file and the byte offset or the
// tensor, never a crash or an allocation larger than the file.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

struct SafetensorsFile {
  std::string path;
  std::map<std::string, Tensor> tensors;         // name -> CPU tensor (F32, F64, I64, BF16 or F16)
  std::map<std::string, std::string> metadata;   // the header's "__metadata__"

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // The named tensor; a missing name throws pw::Error naming the file.
  const Tensor& get(const std::string& name) const;
};

// Writes `tensors` (CPU, dtype F32/F64/I64/BF16/F16, unique non-empty UTF-8
// names) and `metadata` to `path` atomically (io/atomic_file.h).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates the whole file.
SafetensorsFile load_safetensors(const std::string& path);

// "F32", "BF16", ... : the safetensors spelling of a patchwork dtype.
const char* safetensors_dtype_name(DType t);

// The header's size limit; larger headers are refused as corrupt (the Rust
// reference implementation uses the same bound).
constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

}  // namespace pw
