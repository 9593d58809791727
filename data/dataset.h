// Dataset: the interface every reader implements, and the data-set registry:
// a config's `data.dataset` names a data set, which registers itself from its
// own file (data/mnist.cpp, data/cifar.cpp, data/image_folder.cpp) with
// PW_REGISTER_DATASET: its name, its default location, its statistics, the
// data.<key> keys it owns, and how to open a split. Nothing central changes.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "data/image.h"
#include "data/rng.h"
#include "io/keys.h"
#include "runtime/check.h"

namespace pw {

struct Sample {
  Image image;    // (h,w,c) uint8; empty for feature data sets (audio)
  int64_t label;  // in [0, num_classes); 0 for sequence-target data sets (tokens)
  // Feature data sets (audio): the finished model input (C,F,T) F32 on the CPU
  // (log-mel: (1, n_mels, frames)); the image transforms don't apply to it.
  // Undefined for image data sets.
  Tensor features = {};
  std::vector<int64_t> tokens = {};  // (S) target sequence, ids in [1, V] (CTC); empty if none
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

  // --- feature data sets (audio), whose get() fills Sample::features ---
  // True: samples are Sample::features, not images (no image transform, no flip TTA).
  virtual bool has_features() const { return false; }
  // True: features differ in length along their last axis; the loader pads
  // batches with 0 and fills Batch::lengths (Module::forward_padded).
  virtual bool variable_length() const { return false; }
  // Train-time augmentation of s.features in place (SpecAugment); the loader
  // calls it with the sample's SampleRng(seed, epoch, index, Sample).
  virtual void augment(Sample& s, SampleRng& rng) const { (void)s, (void)rng; }
};

// A sample whose file can't be read or decoded (a truncated JPEG, an empty or
// renamed file). Readers that load lazily (ImageFolder) throw it from get();
// the loader skips such samples when LoaderConfig::skip_bad is on
// (data.skip_bad_files), and `patchwork data check` lists them. Every other
// error still stops training.
struct BadSampleError : Error {
  BadSampleError(const std::string& path, const std::string& reason)
      : Error("cannot read '" + path + "': " + reason), path(path), reason(reason) {}
  std::string path;    // the file
  std::string reason;  // why, one sentence without the path
};

// The whole file at `path`, for readers that decode samples from memory (images, WAV);
// a file that can't be opened is a BadSampleError saying so.
std::vector<uint8_t> read_sample_file(const std::string& path);

// Per-channel mean and std of a data set's training images, in [0,1] units.
struct Normalization {
  std::vector<float> mean, std;  // (C)
};

struct DatasetSpec {
  std::string name;                  // the data.dataset value
  std::vector<std::string> aliases;  // other names it answers to ("imagenet")
  std::string doc;                   // one line for `patchwork keys --data NAME`
  // Where data.root "" looks; "" = no default (data.root must be set).
  std::string default_root;
  int64_t channels = 0, num_classes = 0;  // of its images; 0 = decided by the files
  Normalization norm;                     // what data.normalize subtracts and divides by
  // Declares the data set's own data.<key> keys into `keys` (may be left empty).
  std::function<void(KeySet& keys)> declare;
  // Opens the training or evaluation split. `root` is data.root with the
  // default location filled in ("" when neither is set); `data` is the
  // resolved data: section (core keys and the data set's own).
  std::function<std::shared_ptr<Dataset>(const std::string& root, const Options& data, bool train)> open;
};

// Registers a data set; a name or alias registered twice throws pw::Error.
void register_dataset(DatasetSpec spec);
// The data set a name or alias names; nullptr if none.
const DatasetSpec* find_dataset(const std::string& name);
// Its own keys (spec.declare run once, at registration); nullptr if unknown.
const KeySet* dataset_keys(const std::string& name);
std::vector<std::string> registered_datasets();  // sorted, aliases left out

// Opens the split of the data set a resolved data: section names (data.dataset,
// data.root and the data set's own keys).
std::shared_ptr<Dataset> open_dataset(const Options& data, bool train);
// The same by name, with the data set's own keys at their defaults. root ""
// picks the default location where one exists (fashion_mnist:
// /usr/share/datasets/fashion-mnist). For image_folder (alias imagenet),
// root/train or root/val is used when present, else root itself holds the
// class folders.
std::shared_ptr<Dataset> open_dataset(const std::string& name, const std::string& root, bool train);
// The statistics of a data set named as in open_dataset; throws naming the known names otherwise.
Normalization normalization_for(const std::string& name);
// Throws "data set 'NAME' has no default location; set data.root ..." when root is "".
void require_root(const std::string& name, const std::string& root);

namespace detail {
struct DatasetRegistrar {
  explicit DatasetRegistrar(DatasetSpec spec) { register_dataset(std::move(spec)); }
};
}  // namespace detail

// NOTE: executables link patchwork_lib as a WHOLE_ARCHIVE (CMakeLists.txt), so a
// data-set file that nothing references by name still registers itself.
#define PW_DATASET_CONCAT_(a, b) a##b
#define PW_DATASET_CONCAT(a, b) PW_DATASET_CONCAT_(a, b)
#define PW_REGISTER_DATASET(...)                                                                   \
  static ::pw::detail::DatasetRegistrar PW_DATASET_CONCAT(pw_dataset_registrar_, __LINE__)( \
      ::pw::DatasetSpec __VA_ARGS__)

}  // namespace pw
