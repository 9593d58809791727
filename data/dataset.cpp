#include "data/dataset.h"

#include <filesystem>

#include "runtime/check.h"
#include "data/cifar.h"
#include "data/image_folder.h"
#include "data/mnist.h"

namespace pw {

std::shared_ptr<Dataset> open_dataset(const std::string& name, const std::string& root, bool train) {
  const bool known = name == "fashion_mnist" || name == "mnist" || name == "cifar10" || name == "cifar100" ||
                     name == "imagenet" || name == "image_folder";
  PW_CHECK(known, "open_dataset: unknown data set '", name,
           "'; use one of fashion_mnist, mnist, cifar10, cifar100, imagenet, image_folder");
  if (name == "fashion_mnist") return std::make_shared<FashionMNIST>(root, train);
  PW_CHECK(!root.empty(), "open_dataset: data set '", name,
           "' has no default location; set data.root to the folder holding its files");
  if (name == "mnist") return std::make_shared<MNIST>(root, train);
  if (name == "cifar10") return std::make_shared<CIFAR10>(root, train);
  if (name == "cifar100") return std::make_shared<CIFAR100>(root, train);
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path split = fs::path(root) / (train ? "train" : "val");
  return std::make_shared<ImageFolder>(fs::is_directory(split, ec) ? split.string() : root, name);
}

Normalization normalization_for(const std::string& name) {
  // Per-channel statistics of each training split, pixels scaled to [0,1].
  if (name == "fashion_mnist") return {{0.2860f}, {0.3530f}};
  if (name == "mnist") return {{0.1307f}, {0.3081f}};
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  if (name == "cifar100") return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  if (name == "imagenet" || name == "image_folder") return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  PW_FAIL("normalization_for: no statistics for data set '", name,
          "'; use one of fashion_mnist, mnist, cifar10, cifar100, imagenet, or give mean/std explicitly");
}

}  // namespace pw
