#include "data/mnist.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "runtime/check.h"

namespace pw {

const char* const kFashionMnistDefaultRoot = "/usr/share/datasets/fashion-mnist";

namespace {

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::ostringstream os;
  static const char* digits = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) os << (i ? " " : "") << digits[p[i] >> 4] << digits[p[i] & 15];
  return os.str();
}

// zlib prefixes its messages with the path; the caller names the file already.
std::string zlib_reason(gzFile f, const std::string& path) {
  int err = 0;
  std::string msg = gzerror(f, &err);
  if (msg.rfind(path + ": ", 0) == 0) msg = msg.substr(path.size() + 2);
  return msg;
}

// Whole file through zlib: gzread passes plain files through unchanged.
std::vector<uint8_t> read_maybe_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  PW_CHECK(f != nullptr, "cannot open '", path, "' (", std::strerror(errno),
           "); check the path and the file's permissions");
  std::vector<uint8_t> out;
  // Small chunks keep the reported offset of a corrupt block precise.
  const unsigned chunk = 1u << 16;
  for (;;) {
    size_t old = out.size();
    out.resize(old + chunk);
    int got = gzread(f, out.data() + old, chunk);
    if (got <= 0) out.resize(old);
    if (got < 0) {
      std::string msg = zlib_reason(f, path);
      long packed = (long)gzoffset(f);
      gzclose(f);
      PW_FAIL("'", path, "' is corrupted: gzip decompression failed (", msg, ") near compressed byte offset ",
              packed, ", after ", old, " good bytes; re-download the file");
    }
    if (got == 0) break;
    out.resize(old + (size_t)got);
  }
  int err = 0;
  gzerror(f, &err);
  std::string msg = zlib_reason(f, path);
  long packed = (long)gzoffset(f);
  gzclose(f);
  PW_CHECK(err == Z_OK || err == Z_STREAM_END, "'", path, "' is corrupted: gzip decompression stopped (", msg,
           ") at compressed byte offset ", packed, ", after ", out.size(), " bytes; re-download the file");
  return out;
}

uint32_t be32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_ndim) {
  std::vector<uint8_t> bytes = read_maybe_gz(path);
  PW_CHECK(bytes.size() >= 4, "'", path, "' is truncated at byte offset ", bytes.size(),
           ": an IDX file starts with a 4-byte magic number; re-download the file");
  const uint8_t want[4] = {0, 0, 0x08, (uint8_t)expected_ndim};
  PW_CHECK(std::memcmp(bytes.data(), want, 4) == 0, "'", path, "' is not an IDX file of ", expected_ndim,
           "-d unsigned bytes: bytes 0-3 at byte offset 0 are ", hex_bytes(bytes.data(), 4), ", expected ",
           hex_bytes(want, 4), "; check that the file is the ", expected_ndim == 1 ? "labels" : "images",
           " file and re-download it");
  size_t header = 4 + 4 * (size_t)expected_ndim;
  PW_CHECK(bytes.size() >= header, "'", path, "' is truncated at byte offset ", bytes.size(),
           ": the header needs ", header, " bytes (magic + ", expected_ndim, " dimensions); re-download the file");
  IdxArray a;
  uint64_t total = 1;
  for (int d = 0; d < expected_ndim; ++d) {
    uint32_t v = be32(&bytes[4 + 4 * d]);
    PW_CHECK(v > 0 && v <= (1u << 28), "'", path, "' has an implausible dimension ", v, " at byte offset ", 4 + 4 * d,
             "; the header is garbled, re-download the file");
    a.dims.push_back(v);
    total *= v;
  }
  PW_CHECK(total <= (1ull << 34), "'", path, "' declares ", total, " elements; the header is garbled, re-download it");
  size_t want_size = header + (size_t)total;
  PW_CHECK(bytes.size() >= want_size, "'", path, "' is truncated at byte offset ", bytes.size(), ": its header ",
           "promises ", total, " bytes of data, which end at byte offset ", want_size,
           "; re-download the file");
  PW_CHECK(bytes.size() == want_size, "'", path, "' has ", bytes.size() - want_size,
           " unexpected trailing bytes from byte offset ", want_size,
           " on; the header and data disagree, re-download the file");
  a.data.assign(bytes.begin() + (ptrdiff_t)header, bytes.end());
  return a;
}

namespace {
// First existing file among root/<stem><suffix> for every stem and suffix.
std::string find_idx(const std::string& root, const std::vector<std::string>& stems, const std::string& dataset) {
  namespace fs = std::filesystem;
  std::string tried;
  for (const auto& stem : stems)
    for (const char* suffix : {".gz", ""}) {
      fs::path p = fs::path(root) / (stem + suffix);
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
      tried += (tried.empty() ? "" : ", ") + p.string();
    }
  PW_FAIL(dataset, ": no IDX file found; looked for ", tried, "; set data.root to the folder holding the ",
          dataset, " files (gzipped or not)");
}
}  // namespace

MnistDataset::MnistDataset(const std::string& root, bool train, std::string name, std::vector<std::string> classes)
    : name_(std::move(name)), classes_(std::move(classes)) {
  std::string split = train ? "train" : "t10k";
  images_path_ = find_idx(root, {split + "-images-idx3-ubyte", split + "-images.idx3-ubyte"}, name_);
  labels_path_ = find_idx(root, {split + "-labels-idx1-ubyte", split + "-labels.idx1-ubyte"}, name_);
  IdxArray im = read_idx(images_path_, 3);
  IdxArray lb = read_idx(labels_path_, 1);
  n_ = im.dims[0];
  h_ = im.dims[1];
  w_ = im.dims[2];
  PW_CHECK(lb.dims[0] == n_, name_, ": '", images_path_, "' holds ", n_, " images but '", labels_path_, "' holds ",
           lb.dims[0], " labels; the two files come from different splits or downloads, replace both");
  const int64_t k = (int64_t)classes_.size();
  for (int64_t i = 0; i < n_; ++i)
    PW_CHECK(lb.data[i] < k, "'", labels_path_, "' has label ", (int)lb.data[i], " at byte offset ", 8 + i,
             ", outside [0,", k, "); the file is corrupted, re-download it");
  pixels_ = std::move(im.data);
  labels_ = std::move(lb.data);
}

Sample MnistDataset::get(int64_t i) const {
  PW_CHECK(i >= 0 && i < n_, name_, ": sample index ", i, " out of range [0,", n_, ")");
  Sample s{Image(h_, w_, 1), (int64_t)labels_[i]};
  std::memcpy(s.image.data.data(), &pixels_[(size_t)(i * h_ * w_)], (size_t)(h_ * w_));
  return s;
}

int64_t MnistDataset::label(int64_t i) const {
  PW_CHECK(i >= 0 && i < n_, name_, ": sample index ", i, " out of range [0,", n_, ")");
  return labels_[i];
}

FashionMNIST::FashionMNIST(const std::string& root, bool train)
    : MnistDataset(root.empty() ? kFashionMnistDefaultRoot : root, train, "fashion_mnist",
                   {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot"}) {}

MNIST::MNIST(const std::string& root, bool train)
    : MnistDataset(root, train, "mnist", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}) {}

// Statistics of each training split, pixels scaled to [0,1].
PW_REGISTER_DATASET({"fashion_mnist", {}, "Zalando's Fashion-MNIST: 28x28 grey, 60000 train / 10000 test (IDX files)",
                     kFashionMnistDefaultRoot, 1, 10, {{0.2860f}, {0.3530f}}, nullptr,
                     [](const std::string& root, const Options&, bool train) -> std::shared_ptr<Dataset> {
                       return std::make_shared<FashionMNIST>(root, train);
                     }});
PW_REGISTER_DATASET({"mnist", {}, "MNIST digits: 28x28 grey, 60000 train / 10000 test (IDX files)", "", 1, 10,
                     {{0.1307f}, {0.3081f}}, nullptr,
                     [](const std::string& root, const Options&, bool train) -> std::shared_ptr<Dataset> {
                       require_root("mnist", root);
                       return std::make_shared<MNIST>(root, train);
                     }});

}  // namespace pw
