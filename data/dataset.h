// Dataset: the interface every reader implements, and open_dataset(), which
// maps a config's data-set name to a reader.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"

namespace pw {

struct Sample {
  Image image;    // (h,w,c) uint8
  int64_t label;  // in [0, num_classes)
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;  // (num_classes)
  // Thread-safe: worker threads call get() concurrently. i in [0, size()).
  virtual Sample get(int64_t i) const = 0;
  // Label of sample i without decoding its pixels.
  virtual int64_t label(int64_t i) const = 0;
  virtual std::string name() const = 0;  // "fashion_mnist", "cifar10", ...
};

// name: fashion_mnist | mnist | cifar10 | cifar100 | imagenet (alias image_folder).
// root "" picks the default location where one exists (fashion_mnist:
// /usr/share/datasets/fashion-mnist). For imagenet, root/train or root/val is
// used when present, else root itself holds the class folders.
std::shared_ptr<Dataset> open_dataset(const std::string& name, const std::string& root, bool train);

// Per-channel mean and std of a data set's training images, in [0,1] units.
struct Normalization {
  std::vector<float> mean, std;  // (C)
};
// name as in open_dataset. Throws naming the known names otherwise.
Normalization normalization_for(const std::string& name);

}  // namespace pw
