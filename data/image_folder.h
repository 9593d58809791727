// ImageFolder: ImageNet-style folders, root/<class>/<...>/<image>.{jpg,jpeg,png}.
//
// Classes are the sorted subfolder names (byte order, as torchvision sorts
// them); images are found recursively in each class folder, sorted by path.
// Pixels are decoded lazily by get() (stb_image, in the loader's worker
// threads) and always come out as 3-channel RGB.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pw {

class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(const std::string& root, std::string name = "imagenet");
  int64_t size() const override { return (int64_t)paths_.size(); }
  int64_t num_classes() const override { return (int64_t)classes_.size(); }
  const std::vector<std::string>& class_names() const override { return classes_; }
  Sample get(int64_t i) const override;  // decodes the file: (h,w,3)
  int64_t label(int64_t i) const override;
  std::string name() const override { return name_; }
  const std::string& path(int64_t i) const;
  const std::string& root() const { return root_; }

 private:
  std::string root_, name_;
  std::vector<std::string> classes_;
  std::vector<std::string> paths_;  // (size)
  std::vector<int32_t> labels_;     // (size)
};

// Decodes one JPEG/PNG file to 3-channel RGB, whatever its extension says.
// An unreadable, empty, truncated or undecodable file, another format, or an
// image over kMaxImagePixels throws BadSampleError naming the file and why.
Image decode_image_file(const std::string& path);
// The same for the file's bytes; `path` names it in errors.
Image decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path);

// The largest image decoded (64 Mpixel, 8192x8192: 192 MiB as RGB); larger
// headers are refused before any pixel memory is allocated.
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

}  // namespace pw
