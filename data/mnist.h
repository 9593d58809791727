// MNIST-format readers: IDX files (LeCun's format, gzipped or not) and the
// MNIST / Fashion-MNIST data sets built on them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pw {

// An IDX array of unsigned bytes (type code 0x08): dims from the header, data
// row-major. Only the ubyte type is read; it is what every MNIST file uses.
struct IdxArray {
  std::vector<int64_t> dims;   // (ndim)
  std::vector<uint8_t> data;   // (prod(dims))
};
// Reads `path` (gzip-compressed or plain; zlib reads both) and checks the magic
// number, that ndim == expected_ndim, and that the payload size matches the
// header exactly. Any mismatch throws pw::Error naming the file and byte offset.
IdxArray read_idx(const std::string& path, int expected_ndim);

// 28x28 gray images with 10 classes, stored as four IDX files in `root`:
// {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each
// optionally ".gz" (the "-images.idx3-ubyte" spelling is accepted too).
class MnistDataset : public Dataset {
 public:
  MnistDataset(const std::string& root, bool train, std::string name, std::vector<std::string> class_names);
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return (int64_t)classes_.size(); }
  const std::vector<std::string>& class_names() const override { return classes_; }
  Sample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::string name() const override { return name_; }
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }

 private:
  std::string name_, images_path_, labels_path_;
  std::vector<std::string> classes_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
  std::vector<uint8_t> pixels_;  // (n,h,w)
  std::vector<uint8_t> labels_;  // (n)
};

// Zalando's Fashion-MNIST (60000 train / 10000 test). Debian's
// dataset-fashion-mnist installs it in kFashionMnistDefaultRoot.
class FashionMNIST : public MnistDataset {
 public:
  FashionMNIST(const std::string& root, bool train);
};
class MNIST : public MnistDataset {
 public:
  MNIST(const std::string& root, bool train);
};

extern const char* const kFashionMnistDefaultRoot;  // "/usr/share/datasets/fashion-mnist"

}  // namespace pw
