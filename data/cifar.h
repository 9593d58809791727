// CIFAR-10 and CIFAR-100, from the "binary version" archives.
//
// CIFAR-10:  data_batch_{1..5}.bin (train), test_batch.bin; a record is
//            1 label byte + 3072 pixel bytes (3,32,32) CHW.
// CIFAR-100: train.bin, test.bin; a record is coarse label byte, fine label
//            byte + 3072 pixel bytes. The fine labels (100 classes) are used.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pw {

class CifarDataset : public Dataset {
 public:
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return (int64_t)classes_.size(); }
  const std::vector<std::string>& class_names() const override { return classes_; }
  Sample get(int64_t i) const override;  // (32,32,3) HWC
  int64_t label(int64_t i) const override;
  std::string name() const override { return name_; }

 protected:
  // Reads each file, all records of `record_bytes` with the label at byte
  // `label_byte` of the record and the pixels in the last 3072 bytes.
  void load(const std::vector<std::string>& paths, int64_t record_bytes, int64_t label_byte);
  std::string name_;
  std::vector<std::string> classes_;

 private:
  int64_t n_ = 0;
  std::vector<uint8_t> pixels_;  // (n,3,32,32) as stored
  std::vector<uint8_t> labels_;  // (n)
};

// root: the "cifar-10-batches-bin" folder, or a folder containing it.
class CIFAR10 : public CifarDataset {
 public:
  CIFAR10(const std::string& root, bool train);
};
// root: the "cifar-100-binary" folder, or a folder containing it.
class CIFAR100 : public CifarDataset {
 public:
  CIFAR100(const std::string& root, bool train);
};

}  // namespace pw
