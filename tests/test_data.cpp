// Readers: MNIST-style IDX (raw and gz), CIFAR-10/100 binaries, image folders,
// their error messages on broken files, and the real Fashion-MNIST when the
// Debian package is installed.
#include <doctest/doctest.h>
#include <stb_image_write.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include "data/cifar.h"
#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/mnist.h"
#include "tests/test_data_util.h"

using namespace pw;
using namespace pw::test;
namespace fs = std::filesystem;

namespace {

// Writes an MNIST-format split with n images of h x w into dir.
void write_mnist(const TempDir& dir, const std::string& split, uint32_t n, uint32_t h, uint32_t w, bool gz,
                 std::vector<uint8_t>* pixels_out = nullptr, std::vector<uint8_t>* labels_out = nullptr) {
  std::vector<uint8_t> px = pattern_bytes((size_t)n * h * w, 7 + n);
  std::vector<uint8_t> lb(n);
  for (uint32_t i = 0; i < n; ++i) lb[i] = (uint8_t)((i * 7 + 3) % 10);
  std::string sfx = gz ? ".gz" : "";
  write_bytes(dir / (split + "-images-idx3-ubyte" + sfx), idx_bytes({n, h, w}, px), gz);
  write_bytes(dir / (split + "-labels-idx1-ubyte" + sfx), idx_bytes({n}, lb), gz);
  if (pixels_out) *pixels_out = px;
  if (labels_out) *labels_out = lb;
}

}  // namespace

TEST_CASE("IDX reader: raw and gzipped MNIST files") {
  for (bool gz : {false, true}) {
    TempDir dir;
    std::vector<uint8_t> px, lb;
    write_mnist(dir, "train", 7, 5, 3, gz, &px, &lb);
    write_mnist(dir, "t10k", 3, 5, 3, gz);
    MNIST train(dir.path.string(), true);
    CHECK(train.size() == 7);
    CHECK(train.num_classes() == 10);
    CHECK(train.name() == "mnist");
    CHECK(train.images_path() == dir / (std::string("train-images-idx3-ubyte") + (gz ? ".gz" : "")));
    for (int64_t i = 0; i < 7; ++i) {
      Sample s = train.get(i);
      REQUIRE(s.image.h == 5);
      REQUIRE(s.image.w == 3);
      REQUIRE(s.image.c == 1);
      CHECK(s.label == lb[i]);
      CHECK(train.label(i) == lb[i]);
      CHECK(std::equal(s.image.data.begin(), s.image.data.end(), px.begin() + i * 15));
    }
    MNIST test(dir.path.string(), false);
    CHECK(test.size() == 3);
    CHECK_THROWS_WITH_AS(train.get(7), contains("out of range"), pw::Error);
  }
}

TEST_CASE("IDX reader: the images.idx3-ubyte spelling and FashionMNIST class names") {
  TempDir dir;
  std::vector<uint8_t> px = pattern_bytes(2 * 4, 1);
  write_bytes(dir / "train-images.idx3-ubyte", idx_bytes({2, 2, 2}, px));
  write_bytes(dir / "train-labels.idx1-ubyte", idx_bytes({2}, {9, 0}));
  FashionMNIST ds(dir.path.string(), true);
  CHECK(ds.size() == 2);
  CHECK(ds.name() == "fashion_mnist");
  CHECK(ds.class_names().at(9) == "Ankle boot");
  CHECK(ds.get(0).label == 9);
}

TEST_CASE("IDX reader: broken files name the file, the byte offset and the fix") {
  TempDir dir;
  std::vector<uint8_t> px = pattern_bytes(4 * 6 * 6, 3);
  std::vector<uint8_t> lb = {1, 2, 3, 4};
  std::string images = dir / "train-images-idx3-ubyte", labels = dir / "train-labels-idx1-ubyte";
  auto full = idx_bytes({4, 6, 6}, px);

  SUBCASE("missing files: every path looked for is named") {
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains(images + ".gz"), pw::Error);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("set data.root"), pw::Error);
  }
  SUBCASE("truncated raw images file") {
    write_bytes(images, std::vector<uint8_t>(full.begin(), full.end() - 10));
    write_bytes(labels, idx_bytes({4}, lb));
    std::string offset = "byte offset " + std::to_string(full.size() - 10);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains(images), pw::Error);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("truncated at " + offset), pw::Error);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("re-download"), pw::Error);
  }
  SUBCASE("truncated gzip stream") {
    std::string gzpath = images + ".gz";
    write_bytes(gzpath, full, true);
    auto gzbytes = read_bytes(gzpath);
    write_bytes(gzpath, std::vector<uint8_t>(gzbytes.begin(), gzbytes.begin() + (long)gzbytes.size() / 2));
    write_bytes(labels, idx_bytes({4}, lb));
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains(gzpath), pw::Error);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("byte offset"), pw::Error);
  }
  SUBCASE("garbled gzip stream") {
    std::string gzpath = images + ".gz";
    write_bytes(gzpath, full, true);
    auto gzbytes = read_bytes(gzpath);
    for (size_t i = 20; i < gzbytes.size() - 12; i += 3) gzbytes[i] ^= 0x5A;
    write_bytes(gzpath, gzbytes);
    write_bytes(labels, idx_bytes({4}, lb));
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains(gzpath), pw::Error);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("corrupted"), pw::Error);
  }
  SUBCASE("images and labels swapped: wrong magic") {
    write_bytes(images, idx_bytes({4}, lb));
    write_bytes(labels, full);
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true),
                         contains("bytes 0-3 at byte offset 0 are 00 00 08 01, expected 00 00 08 03"),
                         pw::Error);
  }
  SUBCASE("trailing garbage") {
    auto longer = full;
    longer.push_back(7);
    write_bytes(images, longer);
    write_bytes(labels, idx_bytes({4}, lb));
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true),
                         contains("1 unexpected trailing bytes from byte offset " + std::to_string(full.size())),
                         pw::Error);
  }
  SUBCASE("label out of range") {
    write_bytes(images, full);
    write_bytes(labels, idx_bytes({4}, {1, 2, 12, 4}));
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true),
                         contains("'" + labels + "' has label 12 at byte offset 10"), pw::Error);
  }
  SUBCASE("image and label counts differ") {
    write_bytes(images, full);
    write_bytes(labels, idx_bytes({3}, {1, 2, 3}));
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("holds 4 images but"), pw::Error);
  }
  SUBCASE("garbled header dimension") {
    auto bad = full;
    bad[4] = 0xFF;  // images count becomes ~4e9
    write_bytes(images, bad);
    write_bytes(labels, idx_bytes({4}, lb));
    CHECK_THROWS_WITH_AS(MNIST(dir.path.string(), true), contains("at byte offset 4"), pw::Error);
  }
}

namespace {
std::vector<uint8_t> cifar_records(int n, int label_bytes, const std::vector<uint8_t>& labels, uint32_t seed) {
  std::vector<uint8_t> out;
  auto px = pattern_bytes((size_t)n * 3072, seed);
  for (int r = 0; r < n; ++r) {
    for (int k = 0; k < label_bytes; ++k) out.push_back(labels[(size_t)(r * label_bytes + k)]);
    out.insert(out.end(), px.begin() + r * 3072, px.begin() + (r + 1) * 3072);
  }
  return out;
}
}  // namespace

TEST_CASE("CIFAR-10 binary reader") {
  TempDir dir;
  std::string root = dir / "cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b)
    write_bytes(root + "/data_batch_" + std::to_string(b) + ".bin",
                cifar_records(2, 1, {(uint8_t)(b % 10), (uint8_t)((b * 3) % 10)}, b));
  auto test_rec = cifar_records(3, 1, {9, 0, 5}, 99);
  write_bytes(root + "/test_batch.bin", test_rec);

  SUBCASE("reads records, CHW -> HWC; finds the nested folder") {
    CIFAR10 train(dir.path.string(), true);
    CHECK(train.size() == 10);
    CHECK(train.num_classes() == 10);
    CHECK(train.class_names()[0] == "airplane");
    CHECK(train.get(2).label == 2);  // batch 2, record 0
    CHECK(train.get(3).label == 6);
    CIFAR10 test(root, false);
    REQUIRE(test.size() == 3);
    Sample s = test.get(1);
    CHECK(s.label == 0);
    REQUIRE(s.image.h == 32);
    REQUIRE(s.image.c == 3);
    const uint8_t* rec = &test_rec[3073 + 1];  // record 1 pixels, (3,32,32)
    bool same = true;
    for (int ch = 0; ch < 3; ++ch)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) same &= s.image.at(y, x, ch) == rec[ch * 1024 + y * 32 + x];
    CHECK(same);
  }
  SUBCASE("file size not a multiple of the record") {
    auto t = test_rec;
    t.resize(t.size() - 100);
    write_bytes(root + "/test_batch.bin", t);
    CHECK_THROWS_WITH_AS(CIFAR10(root, false), contains(root + "/test_batch.bin"), pw::Error);
    CHECK_THROWS_WITH_AS(CIFAR10(root, false), contains("not a positive multiple of the 3073-byte record"),
                         pw::Error);
    CHECK_THROWS_WITH_AS(CIFAR10(root, false), contains("byte offset 6146"), pw::Error);
  }
  SUBCASE("label out of range") {
    write_bytes(root + "/test_batch.bin", cifar_records(3, 1, {9, 10, 5}, 99));
    CHECK_THROWS_WITH_AS(CIFAR10(root, false), contains("has label 10 at byte offset 3073 (record 1)"),
                         pw::Error);
  }
  SUBCASE("missing batch file") {
    fs::remove(root + "/data_batch_3.bin");
    CHECK_THROWS_WITH_AS(CIFAR10(root, true), contains("missing file '" + root + "/data_batch_3.bin'"),
                         pw::Error);
  }
}

TEST_CASE("CIFAR-100 binary reader uses the fine labels") {
  TempDir dir;
  std::string root = dir / "cifar-100-binary";
  write_bytes(root + "/train.bin", cifar_records(3, 2, {1, 42, 19, 99, 0, 0}, 5));
  CIFAR100 ds(dir.path.string(), true);
  CHECK(ds.size() == 3);
  CHECK(ds.num_classes() == 100);
  CHECK(ds.get(0).label == 42);
  CHECK(ds.get(1).label == 99);
  CHECK(ds.class_names()[99] == "worm");
  CHECK(ds.class_names()[42] == "leopard");
  write_bytes(root + "/test.bin", cifar_records(2, 2, {1, 42, 3, 100}, 6));
  CHECK_THROWS_WITH_AS(CIFAR100(root, false), contains("has label 100 at byte offset 3075"), pw::Error);
  CHECK_THROWS_WITH_AS(CIFAR100(dir / "nowhere", false), contains("missing file"), pw::Error);
}

namespace {
// (h,w,c) pattern image.
std::vector<uint8_t> pattern_image(int h, int w, int c, uint32_t seed) { return pattern_bytes((size_t)h * w * c, seed); }
}  // namespace

TEST_CASE("ImageFolder: sorted classes, PNG exact, gray PNG -> RGB, JPEG close") {
  TempDir dir;
  std::string root = dir / "train";
  fs::create_directories(root + "/b_cat/sub");
  fs::create_directories(root + "/a_dog");
  fs::create_directories(root + "/.hidden");
  auto rgb = pattern_image(6, 5, 3, 1);
  REQUIRE(stbi_write_png((root + "/a_dog/x1.png").c_str(), 5, 6, 3, rgb.data(), 5 * 3));
  auto gray = pattern_image(4, 7, 1, 2);
  REQUIRE(stbi_write_png((root + "/a_dog/x0.PNG").c_str(), 7, 4, 1, gray.data(), 7));
  // A smooth image, so JPEG's error stays small.
  std::vector<uint8_t> smooth(16 * 16 * 3);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x)
      for (int k = 0; k < 3; ++k) smooth[(y * 16 + x) * 3 + k] = (uint8_t)(40 + 8 * x + 4 * y + 20 * k);
  REQUIRE(stbi_write_jpg((root + "/b_cat/sub/y.jpeg").c_str(), 16, 16, 3, smooth.data(), 95));
  REQUIRE(stbi_write_jpg((root + "/b_cat/z.jpg").c_str(), 16, 16, 3, smooth.data(), 95));
  write_bytes(root + "/b_cat/notes.txt", {1, 2, 3});

  auto ds = open_dataset("imagenet", dir.path.string(), true);  // picks root/train
  REQUIRE(ds->size() == 4);
  CHECK(ds->num_classes() == 2);
  CHECK(ds->class_names() == std::vector<std::string>{"a_dog", "b_cat"});
  CHECK(ds->label(0) == 0);
  CHECK(ds->label(3) == 1);
  Sample g = ds->get(0);  // x0.PNG sorts before x1.png
  REQUIRE(g.image.c == 3);
  REQUIRE(g.image.h == 4);
  REQUIRE(g.image.w == 7);
  CHECK(g.image.at(2, 3, 0) == gray[2 * 7 + 3]);
  CHECK(g.image.at(2, 3, 2) == gray[2 * 7 + 3]);
  Sample c = ds->get(1);
  CHECK(c.image.data == rgb);
  Sample j = ds->get(2);
  REQUIRE(j.image.h == 16);
  double err = 0;  // mean absolute error: JPEG is lossy (and stb subsamples chroma)
  for (size_t i = 0; i < smooth.size(); ++i) err += std::abs((double)j.image.data[i] - smooth[i]);
  CHECK(err / smooth.size() < 3);
}

TEST_CASE("ImageFolder: errors name the file or folder") {
  TempDir dir;
  fs::create_directories(dir / "cls");
  write_bytes(dir / "cls/broken.jpg", pattern_bytes(300, 4));
  ImageFolder ds(dir.path.string());
  CHECK(ds.size() == 1);
  CHECK_THROWS_WITH_AS(ds.get(0), contains("cannot read '" + (dir / "cls/broken.jpg") + "'"), BadSampleError);
  fs::create_directories(dir / "empty_class");
  CHECK_THROWS_WITH_AS(ImageFolder(dir.path.string()), contains(dir / "empty_class"), pw::Error);
  CHECK_THROWS_WITH_AS(ImageFolder(dir / "missing"), contains("does not exist"), pw::Error);
}

TEST_CASE("open_dataset and normalization_for") {
  CHECK_THROWS_WITH_AS(open_dataset("svhn", "/tmp", true), contains("unknown data set 'svhn'"), pw::Error);
  CHECK_THROWS_WITH_AS(open_dataset("cifar10", "", true), contains("set data.root"), pw::Error);
  CHECK(normalization_for("cifar10").mean.size() == 3);
  CHECK(normalization_for("fashion_mnist").std.at(0) == doctest::Approx(0.3530));
  CHECK(normalization_for("imagenet").mean.at(0) == doctest::Approx(0.485));
  CHECK_THROWS_WITH_AS(normalization_for("svhn"), contains("svhn"), pw::Error);
}

TEST_CASE("real Fashion-MNIST from the Debian package") {
  if (!fs::exists(std::string(kFashionMnistDefaultRoot) + "/train-images-idx3-ubyte.gz")) {
    std::cout << "SKIPPED: dataset-fashion-mnist is not installed (" << kFashionMnistDefaultRoot << ")\n";
    return;
  }
  auto train = open_dataset("fashion_mnist", "", true);
  auto test = open_dataset("fashion_mnist", "", false);
  REQUIRE(train->size() == 60000);
  REQUIRE(test->size() == 10000);
  CHECK(train->num_classes() == 10);
  // Both splits are exactly balanced.
  std::vector<int64_t> count(10, 0), tcount(10, 0);
  for (int64_t i = 0; i < train->size(); ++i) ++count[(size_t)train->label(i)];
  for (int64_t i = 0; i < test->size(); ++i) ++tcount[(size_t)test->label(i)];
  for (int k = 0; k < 10; ++k) {
    CHECK(count[k] == 6000);
    CHECK(tcount[k] == 1000);
  }
  // The normalisation constants are the training split's statistics.
  double sum = 0, sq = 0;
  const int64_t stride = 7;  // every 7th image keeps the test fast
  int64_t n = 0;
  for (int64_t i = 0; i < train->size(); i += stride) {
    Sample s = train->get(i);
    REQUIRE(s.image.h == 28);
    for (uint8_t p : s.image.data) {
      double v = p / 255.0;
      sum += v;
      sq += v * v;
    }
    n += 784;
  }
  double mean = sum / n, std = std::sqrt(sq / n - mean * mean);
  Normalization norm = normalization_for("fashion_mnist");
  CHECK(mean == doctest::Approx(norm.mean[0]).epsilon(0.01));
  CHECK(std == doctest::Approx(norm.std[0]).epsilon(0.01));
}
