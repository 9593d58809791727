#include "data/image_folder.h"

// stb_image v2.30, vendored (third_party/stb/README.md: Debian 12's v2.27 has a
// heap overflow on a bad JPEG huffman table), private to this file, JPEG and
// PNG decoders only.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "third_party/stb/stb_image.h"
#pragma GCC diagnostic pop

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/check.h"

namespace pw {

namespace {
namespace fs = std::filesystem;

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& ch : ext) ch = (char)std::tolower((unsigned char)ch);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}
}  // namespace

ImageFolder::ImageFolder(const std::string& root, std::string name) : root_(root), name_(std::move(name)) {
  std::error_code ec;
  PW_CHECK(fs::is_directory(root, ec), name_, ": image folder '", root,
           "' does not exist or is not a directory; set data.root to the folder holding one subfolder per class");
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && e.path().filename().string()[0] != '.') classes_.push_back(e.path().filename().string());
  PW_CHECK(!ec, name_, ": cannot list '", root, "' (", ec.message(), ")");
  std::sort(classes_.begin(), classes_.end());
  PW_CHECK(!classes_.empty(), name_, ": '", root, "' has no class subfolders; expected root/<class>/<image>.jpg");
  for (size_t k = 0; k < classes_.size(); ++k) {
    fs::path dir = fs::path(root) / classes_[k];
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file() && is_image_file(it->path())) files.push_back(it->path().string());
    }
    PW_CHECK(!ec, name_, ": cannot list '", dir.string(), "' (", ec.message(), ")");
    PW_CHECK(!files.empty(), name_, ": class folder '", dir.string(),
             "' holds no .jpg/.jpeg/.png file; remove the folder or add its images");
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      paths_.push_back(std::move(f));
      labels_.push_back((int32_t)k);
    }
  }
}

const std::string& ImageFolder::path(int64_t i) const {
  PW_CHECK(i >= 0 && i < size(), name_, ": sample index ", i, " out of range [0,", size(), ")");
  return paths_[(size_t)i];
}

int64_t ImageFolder::label(int64_t i) const {
  PW_CHECK(i >= 0 && i < size(), name_, ": sample index ", i, " out of range [0,", size(), ")");
  return labels_[(size_t)i];
}

Sample ImageFolder::get(int64_t i) const { return Sample{decode_image_file(path(i)), label(i)}; }

namespace {
std::string hex_prefix(const std::vector<uint8_t>& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < std::min<size_t>(b.size(), 4); ++i)
    s += std::string(i ? " " : "") + digits[b[i] >> 4] + digits[b[i] & 15];
  return s;
}

// Why a JPEG stops before its end-of-image marker, or "" when the marker is there.
// stb_image (like libjpeg) decodes a file cut inside its compressed data without a
// word, filling the missing rows with grey; PIL refuses it ("image file is
// truncated"), and so does this reader. Walks the marker segments from SOI; after
// each SOS, the entropy-coded data runs to the next marker (0xFF followed by anything
// but a stuffed 0x00, a restart marker or fill). Bytes after EOI are allowed.
std::string jpeg_truncation(const std::vector<uint8_t>& b) {
  const size_t n = b.size();
  auto cut = [&](size_t at, const char* where) {
    return std::string("the JPEG ends at byte ") + std::to_string(n) + " " + where + " (offset " +
           std::to_string(at) + ") with no end-of-image marker: the file is truncated; replace or delete it";
  };
  size_t p = 2;  // after SOI
  while (true) {
    while (p < n && b[p] != 0xff) ++p;  // tolerate junk between segments, as libjpeg does
    while (p < n && b[p] == 0xff) ++p;  // fill bytes
    if (p >= n) return cut(p, "between segments");
    const uint8_t m = b[p++];
    if (m == 0xd9) return "";                              // EOI
    if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;   // no length
    if (p + 2 > n) return cut(p, "inside a segment header");
    const size_t len = ((size_t)b[p] << 8) | b[p + 1];
    if (len < 2 || p + len > n) return cut(p, "inside a marker segment");
    p += len;
    if (m != 0xda) continue;
    // SOS: the entropy-coded data, up to the next real marker.
    while (true) {
      while (p < n && b[p] != 0xff) ++p;
      if (p + 1 >= n) return cut(p, "inside the compressed image data");
      const uint8_t next = b[p + 1];
      if (next == 0x00 || (next >= 0xd0 && next <= 0xd7)) p += 2;
      else if (next == 0xff) ++p;
      else break;
    }
  }
}
}  // namespace

Image decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.empty()) throw BadSampleError(path, "the file is empty (0 bytes); replace or delete it");
  if (bytes.size() >= (size_t)INT32_MAX)
    throw BadSampleError(path, "the file is " + std::to_string(bytes.size()) + " bytes, too large for an image");
  // Only the two formats the folder reader lists are decoded (stb_image is
  // built with those two alone); anything else gets a clear reason here.
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const uint8_t kJpeg[3] = {0xff, 0xd8, 0xff};
  const bool png = bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0;
  const bool jpeg = bytes.size() >= 3 && std::memcmp(bytes.data(), kJpeg, 3) == 0;
  if (!png && !jpeg)
    throw BadSampleError(path, "not a JPEG or PNG file (it starts with bytes " + hex_prefix(bytes) +
                                   "); replace or delete it");
  int w = 0, h = 0, c = 0;
  // stb's failure reason is thread-local (stb_image >= 2.24), so concurrent
  // workers each see their own.
  if (!stbi_info_from_memory(bytes.data(), (int)bytes.size(), &w, &h, &c))
    throw BadSampleError(path, std::string("the ") + (png ? "PNG" : "JPEG") + " header is damaged (stb_image: " +
                                   stbi_failure_reason() + "); replace or delete it");
  if (w <= 0 || h <= 0 || (int64_t)w * h > kMaxImagePixels)
    throw BadSampleError(path, "the header declares " + std::to_string(w) + "x" + std::to_string(h) +
                                   " pixels, over the reader's limit of " + std::to_string(kMaxImagePixels) +
                                   "; downscale the image or delete it");
  if (jpeg) {
    const std::string cut = jpeg_truncation(bytes);
    if (!cut.empty()) throw BadSampleError(path, cut);
  }
  uint8_t* px = stbi_load_from_memory(bytes.data(), (int)bytes.size(), &w, &h, &c, 3);
  if (px == nullptr)
    throw BadSampleError(path, std::string("the ") + (png ? "PNG" : "JPEG") + " data is damaged (stb_image: " +
                                   stbi_failure_reason() + "); replace or delete it");
  Image img;
  img.h = h;
  img.w = w;
  img.c = 3;
  img.data.assign(px, px + (size_t)h * w * 3);
  stbi_image_free(px);
  return img;
}

Image decode_image_file(const std::string& path) {
  return decode_image_bytes(read_sample_file(path), path);
}

namespace {
void image_folder_keys(KeySet& k) {
  k.add("train_split", KeySpec::String("", "training images, one sub-folder per class (\"\" = data.root)").runtime(),
        "data");
  k.add("test_split", KeySpec::String("", "evaluation images, one sub-folder per class (\"\" = data.root)").runtime(),
        "data");
}

std::shared_ptr<Dataset> open_image_folder(const std::string& root_in, const Options& data, bool train) {
  const std::string& name = data.get_string("dataset");  // image_folder or imagenet
  std::string root = data.get_string(train ? "train_split" : "test_split");
  if (root.empty()) root = root_in;
  PW_CHECK(!root.empty(), "open_dataset: data set '", name, "' has no default location; set data.",
           train ? "train_split" : "test_split", " (or data.root) to the folder holding its class folders");
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path split = fs::path(root) / (train ? "train" : "val");
  return std::make_shared<ImageFolder>(fs::is_directory(split, ec) ? split.string() : root, name);
}
}  // namespace

// ImageNet's statistics, which image-folder recipes use.
PW_REGISTER_DATASET({"image_folder", {"imagenet"},
                     "ImageNet-style folders: root/<class>/.../<image>.{jpg,jpeg,png}, decoded to RGB",
                     "", 3, 0, {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}, image_folder_keys,
                     open_image_folder});

}  // namespace pw
