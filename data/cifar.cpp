#include "data/cifar.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/check.h"

namespace pw {

namespace {
namespace fs = std::filesystem;

constexpr int64_t kPixels = 3 * 32 * 32;

const char* const kCifar10Classes[] = {"airplane", "automobile", "bird", "cat", "deer",
                                       "dog", "frog", "horse", "ship", "truck"};

// The fine_label_names.txt of the CIFAR-100 binary archive, in label order.
const char* const kCifar100Classes[] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};
static_assert(sizeof(kCifar100Classes) / sizeof(kCifar100Classes[0]) == 100, "CIFAR-100 has 100 fine classes");

// root itself when it holds `probe`, else root/<subdir> when that does.
std::string resolve_root(const std::string& root, const std::string& subdir, const std::string& probe) {
  std::error_code ec;
  if (fs::exists(fs::path(root) / probe, ec)) return root;
  fs::path nested = fs::path(root) / subdir;
  if (fs::exists(nested / probe, ec)) return nested.string();
  return root;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}
}  // namespace

void CifarDataset::load(const std::vector<std::string>& paths, int64_t record_bytes, int64_t label_byte) {
  const int64_t k = (int64_t)classes_.size();
  for (const auto& path : paths) {
    std::error_code ec;
    PW_CHECK(fs::is_regular_file(path, ec), name_, ": missing file '", path,
             "'; set data.root to the folder extracted from the ", name_ == "cifar10" ? "cifar-10" : "cifar-100",
             " binary archive");
    FILE* f = std::fopen(path.c_str(), "rb");
    PW_CHECK(f != nullptr, name_, ": cannot open '", path, "' (", std::strerror(errno), "); check its permissions");
    std::fseek(f, 0, SEEK_END);
    long size = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    if (size <= 0 || size % record_bytes != 0) {
      std::fclose(f);
      PW_FAIL(name_, ": '", path, "' is ", size, " bytes, not a positive multiple of the ", record_bytes,
              "-byte record; the last record starting at byte offset ", size / record_bytes * record_bytes,
              " is incomplete (truncated download?), re-download the archive");
    }
    std::vector<uint8_t> buf((size_t)size);
    size_t got = std::fread(buf.data(), 1, buf.size(), f);
    std::fclose(f);
    PW_CHECK(got == buf.size(), name_, ": read of '", path, "' stopped at byte offset ", got, " of ", size,
             "; check the disk and re-download");
    int64_t records = size / record_bytes;
    pixels_.reserve(pixels_.size() + (size_t)(records * kPixels));
    for (int64_t r = 0; r < records; ++r) {
      const uint8_t* rec = &buf[(size_t)(r * record_bytes)];
      PW_CHECK(rec[label_byte] < k, name_, ": '", path, "' has label ", (int)rec[label_byte], " at byte offset ",
               r * record_bytes + label_byte, " (record ", r, "), outside [0,", k,
               "); the file is corrupted or is not a ", name_, " file");
      labels_.push_back(rec[label_byte]);
      pixels_.insert(pixels_.end(), rec + record_bytes - kPixels, rec + record_bytes);
    }
    n_ += records;
  }
}

Sample CifarDataset::get(int64_t i) const {
  PW_CHECK(i >= 0 && i < n_, name_, ": sample index ", i, " out of range [0,", n_, ")");
  Sample s{Image(32, 32, 3), (int64_t)labels_[i]};
  const uint8_t* src = &pixels_[(size_t)(i * kPixels)];  // (3,32,32)
  uint8_t* dst = s.image.data.data();                     // (32,32,3)
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t p = 0; p < 32 * 32; ++p) dst[p * 3 + ch] = src[ch * 1024 + p];
  return s;
}

int64_t CifarDataset::label(int64_t i) const {
  PW_CHECK(i >= 0 && i < n_, name_, ": sample index ", i, " out of range [0,", n_, ")");
  return labels_[i];
}

CIFAR10::CIFAR10(const std::string& root_in, bool train) {
  name_ = "cifar10";
  std::string root = resolve_root(root_in, "cifar-10-batches-bin", train ? "data_batch_1.bin" : "test_batch.bin");
  classes_.assign(std::begin(kCifar10Classes), std::end(kCifar10Classes));
  std::vector<std::string> paths;
  if (train)
    for (int b = 1; b <= 5; ++b) paths.push_back((fs::path(root) / ("data_batch_" + std::to_string(b) + ".bin")).string());
  else
    paths.push_back((fs::path(root) / "test_batch.bin").string());
  load(paths, 1 + kPixels, 0);
}

CIFAR100::CIFAR100(const std::string& root_in, bool train) {
  name_ = "cifar100";
  std::string root = resolve_root(root_in, "cifar-100-binary", train ? "train.bin" : "test.bin");
  // Prefer the archive's own names file; it matches the built-in list.
  std::vector<std::string> names = read_lines(fs::path(root) / "fine_label_names.txt");
  if (names.size() == 100)
    classes_ = names;
  else
    classes_.assign(std::begin(kCifar100Classes), std::end(kCifar100Classes));
  load({(fs::path(root) / (train ? "train.bin" : "test.bin")).string()}, 2 + kPixels, 1);
}

// Statistics of each training split, pixels scaled to [0,1].
PW_REGISTER_DATASET({"cifar10", {}, "CIFAR-10: 32x32 RGB, 10 classes, 50000 train / 10000 test (binary version)", "",
                     3, 10, {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}, nullptr,
                     [](const std::string& root, const Options&, bool train) -> std::shared_ptr<Dataset> {
                       require_root("cifar10", root);
                       return std::make_shared<CIFAR10>(root, train);
                     }});
PW_REGISTER_DATASET({"cifar100", {}, "CIFAR-100 (fine labels): 32x32 RGB, 100 classes (binary version)", "", 3, 100,
                     {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}}, nullptr,
                     [](const std::string& root, const Options&, bool train) -> std::shared_ptr<Dataset> {
                       require_root("cifar100", root);
                       return std::make_shared<CIFAR100>(root, train);
                     }});

}  // namespace pw
