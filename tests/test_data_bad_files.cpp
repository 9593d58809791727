// Unreadable image files: what decode_image_file says about each kind of
// damage, `patchwork data check` listing them, and data.skip_bad_files
// training past them with a deterministic order.
#include <doctest/doctest.h>
#include <stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "data/check.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "tests/test_data_util.h"
#include "trainers/cli.h"

using namespace pw;
using namespace pw::test;
namespace fs = std::filesystem;

namespace {

// A valid w x h RGB image in PNG or JPEG, as bytes.
std::vector<uint8_t> encode(bool png, int w, int h, uint32_t seed) {
  std::vector<uint8_t> px = pattern_bytes((size_t)w * h * 3, seed), out;
  auto sink = [](void* ctx, void* data, int n) {
    auto* v = (std::vector<uint8_t>*)ctx;
    v->insert(v->end(), (uint8_t*)data, (uint8_t*)data + n);
  };
  if (png) REQUIRE(stbi_write_png_to_func(sink, &out, w, h, 3, px.data(), w * 3));
  else REQUIRE(stbi_write_jpg_to_func(sink, &out, w, h, 3, px.data(), 90));
  return out;
}

std::vector<uint8_t> head(std::vector<uint8_t> b, size_t n) {
  b.resize(std::min(b.size(), n));
  return b;
}

// root/<a|b>/<name>: 6 good images per class, and the bad files given.
struct Folder {
  TempDir dir;
  std::string root() const { return dir / "imgs"; }
  void add(const std::string& rel, const std::vector<uint8_t>& bytes) { write_bytes(root() + "/" + rel, bytes); }
  Folder() {
    for (int k = 0; k < 6; ++k) {
      add("a/good" + std::to_string(k) + ".png", encode(true, 8, 8, 10 + k));
      add("b/good" + std::to_string(k) + ".jpg", encode(false, 8, 8, 20 + k));
    }
  }
};

std::string reason_of(const std::string& path) {
  try {
    decode_image_file(path);
  } catch (const BadSampleError& e) {
    CHECK(e.path == path);
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    return e.reason;
  }
  return "(decoded)";
}

std::pair<int, std::string> cli(std::vector<std::string> args) {
  args.insert(args.begin(), "patchwork");
  std::ostringstream out;
  std::streambuf* old = std::cout.rdbuf(out.rdbuf());
  int rc = run_cli(args);
  std::cout.rdbuf(old);
  return {rc, out.str()};
}

}  // namespace

TEST_CASE("decode_image_file: each kind of bad file is a BadSampleError with its reason") {
  Folder f;
  const auto png = encode(true, 32, 32, 1), jpg = encode(false, 32, 32, 2);
  f.add("a/empty.png", {});
  f.add("a/trunc_header.png", head(png, 20));  // the signature and part of IHDR
  f.add("a/trunc_data.png", head(png, png.size() / 2));
  f.add("b/trunc_header.jpg", head(jpg, 40));  // before the frame header
  f.add("b/gif.jpg", {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0});
  f.add("b/text.jpeg", {'h', 'e', 'l', 'l', 'o', '\n'});
  std::string r = f.root() + "/";
  CHECK(reason_of(r + "a/empty.png").find("empty (0 bytes)") != std::string::npos);
  CHECK(reason_of(r + "a/trunc_header.png").find("PNG header is damaged") != std::string::npos);
  CHECK(reason_of(r + "a/trunc_data.png").find("PNG data is damaged") != std::string::npos);
  CHECK(reason_of(r + "b/trunc_header.jpg").find("JPEG") != std::string::npos);
  CHECK(reason_of(r + "b/gif.jpg").find("not a JPEG or PNG file (it starts with bytes 47 49 46 38)") !=
        std::string::npos);
  CHECK(reason_of(r + "b/text.jpeg").find("not a JPEG or PNG") != std::string::npos);
  CHECK(reason_of(r + "b/missing.jpg").find("cannot open it") != std::string::npos);
  // Cut inside the compressed data (stb_image alone decodes it, grey below the cut), or
  // just before EOI: both truncated. Bytes after EOI are fine.
  f.add("b/trunc_entropy.jpg", head(jpg, jpg.size() * 3 / 4));
  f.add("b/no_eoi.jpg", head(jpg, jpg.size() - 2));
  std::vector<uint8_t> trailing = jpg;
  trailing.insert(trailing.end(), {0x00, 0x12, 0xff, 0x00});
  f.add("b/trailing.jpg", trailing);
  CHECK(reason_of(r + "b/trunc_entropy.jpg").find("inside the compressed image data") != std::string::npos);
  CHECK(reason_of(r + "b/trunc_entropy.jpg").find("truncated") != std::string::npos);
  CHECK(reason_of(r + "b/no_eoi.jpg").find("no end-of-image marker") != std::string::npos);
  CHECK(decode_image_file(r + "b/trailing.jpg").h == 32);
  // A PNG named .jpg is still a PNG.
  f.add("b/really_png.jpg", png);
  CHECK(decode_image_file(r + "b/really_png.jpg").h == 32);
  // A header declaring more than kMaxImagePixels is refused before decoding.
  std::vector<uint8_t> huge = png;
  huge[16] = 0, huge[17] = 0x01, huge[18] = 0, huge[19] = 0;  // IHDR width 65536 (the CRC is not checked first)
  huge[20] = 0, huge[21] = 0x01, huge[22] = 0, huge[23] = 0;  // height 65536
  f.add("a/huge.png", huge);
  std::string why = reason_of(r + "a/huge.png");
  CHECK((why.find("over the reader's limit") != std::string::npos || why.find("damaged") != std::string::npos));
}

TEST_CASE("regression (fuzz_image): a JPEG whose huffman counts add up to more than 256 is read without writing out of bounds") {
  // Debian 12's stb_image 2.27 wrote past its 257-entry table on this file
  // (found by fuzz_image, docs/sanitizers.md). The vendored 2.30 stops at the
  // bad table, which comes before any scan, and like libjpeg returns what it
  // decoded so far: a blank 16x12 image. The sanitizer build checks that
  // nothing is written out of bounds on the way.
  std::string path = std::string(PW_SOURCE_DIR) + "/tests/fuzz/regressions/fuzz_image/jpeg_dht_counts_over_256.jpg";
  REQUIRE(fs::is_regular_file(path));
  Image img = decode_image_file(path);
  CHECK(img.h == 12);
  CHECK(img.w == 16);
  CHECK(img.data.size() == 16 * 12 * 3);
}

TEST_CASE("check_dataset lists every unreadable file once, sorted, with its reason") {
  Folder f;
  f.add("a/zz_empty.png", {});
  f.add("b/aa_trunc.jpg", head(encode(false, 16, 16, 3), 50));
  ImageFolder ds(f.root());
  REQUIRE(ds.size() == 14);
  for (int threads : {1, 3}) {
    std::vector<BadSample> bad = check_dataset(ds, threads);
    REQUIRE(bad.size() == 2);
    CHECK(bad[0].path == ds.path(bad[0].index));
    CHECK(bad[0].path == f.root() + "/a/zz_empty.png");
    CHECK(bad[0].reason.find("empty") != std::string::npos);
    CHECK(bad[1].path == f.root() + "/b/aa_trunc.jpg");
  }
}

TEST_CASE("loader: strict by default; skip_bad replaces each bad sample deterministically") {
  Folder f;
  f.add("a/x_bad.png", {'n', 'o', 'p', 'e'});
  f.add("b/x_bad.jpg", {});
  auto ds = std::make_shared<ImageFolder>(f.root());
  REQUIRE(ds->size() == 14);
  TransformConfig t;
  t.image_size = 8;
  LoaderConfig c;
  c.batch_size = 5;
  c.seed = 3;

  c.num_workers = 2;
  {
    DataLoader strict(ds, Transform(t, true), c);
    strict.set_position(0);
    Batch b;
    CHECK_THROWS_AS([&] { while (strict.next(b)) {} }(), BadSampleError);
  }

  c.skip_bad = true;
  std::vector<std::vector<double>> labels[2], images[2];
  int64_t bad_count[2] = {0, 0};
  for (int w : {0, 3}) {
    c.num_workers = w;
    DataLoader dl(ds, Transform(t, true), c);
    const int k = w == 0 ? 0 : 1;
    for (int64_t epoch : {0, 1}) {
      dl.set_position(epoch);
      std::vector<int64_t> order = dl.epoch_order(epoch);
      Batch b;
      int64_t pos = 0;
      while (dl.next(b)) {
        REQUIRE(b.labels.size(0) == std::min<int64_t>(5, 14 - pos));  // batches keep their size
        for (int64_t j = 0; j < b.labels.size(0); ++j, ++pos) {
          // A bad sample is replaced by the next sample of the order that reads.
          int64_t q = pos;
          while (ds->path(order[q % 14]).find("x_bad") != std::string::npos) ++q;
          CHECK(b.labels.data<int64_t>()[j] == ds->label(order[q % 14]));
        }
        labels[k].push_back(b.labels.to_vector());
        images[k].push_back(b.images.to_vector());
      }
    }
    bad_count[k] = dl.bad_files();
  }
  CHECK(bad_count[0] == 2);  // each counted once over both epochs
  CHECK(bad_count[1] == 2);
  CHECK(labels[0] == labels[1]);  // the same batches with any number of workers
  CHECK(images[0] == images[1]);
}

TEST_CASE("loader: skip_bad with every sample bad stops with a clear error") {
  TempDir dir;
  write_bytes(dir / "imgs/a/1.png", {});
  write_bytes(dir / "imgs/a/2.png", {1, 2});
  auto ds = std::make_shared<ImageFolder>(dir / "imgs");
  LoaderConfig c;
  c.batch_size = 2;
  c.num_workers = 0;
  c.skip_bad = true;
  DataLoader dl(ds, Transform(TransformConfig{}, false), c);
  Batch b;
  CHECK_THROWS_WITH_AS(dl.next(b), contains("every one of the 2 samples"), pw::Error);
}

TEST_CASE("patchwork data check CONFIG: lists bad files, exit 1; a clean set exits 0") {
  Folder f;
  f.add("a/broken.png", head(encode(true, 16, 16, 5), 30));
  std::string cfg = f.dir / "c.yaml";
  {
    std::ofstream o(cfg);
    o << "model:\n  type: vit\n  image_size: 8\n  channels: 3\n  num_classes: 2\n"
      << "data:\n  dataset: image_folder\n  train_split: " << f.root() << "\n  test_split: " << f.root() << "\n";
  }
  auto [rc, out] = cli({"data", "check", cfg});
  CHECK(rc == 1);
  CHECK(out.find(f.root() + "/a/broken.png: the PNG") != std::string::npos);
  CHECK(out.find("train split (image_folder): 13 samples checked, 1 unreadable") != std::string::npos);
  CHECK(out.find("test split (image_folder): 13 samples checked, 1 unreadable") != std::string::npos);
  fs::remove(f.root() + "/a/broken.png");
  auto [rc2, out2] = cli({"data", "check", cfg, "--set", "data.skip_bad_files=true"});
  CHECK(rc2 == 0);
  CHECK(out2.find("12 samples checked, 0 unreadable") != std::string::npos);
  auto [rc3, out3] = cli({"data", "check", cfg, "--set", "data.test_split=" + f.dir / "nowhere"});
  CHECK(rc3 == 1);
  CHECK(out3.find("test split: cannot open") != std::string::npos);
}
