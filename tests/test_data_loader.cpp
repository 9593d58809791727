// DataLoader: identical batches for any number of workers, exact resume with
// set_position, in-order delivery, bounded prefetch, worker errors rethrown,
// and a clean shutdown mid-epoch.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "data/loader.h"
#include "tests/test_data_util.h"

using namespace pw;
using namespace pw::test;

namespace {

// n images of (h,w,3) with pattern pixels; label = i % k. Optionally slow,
// failing at one index, and counting get() calls.
class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(int64_t n, int64_t h, int64_t w, int64_t k) : n_(n), h_(h), w_(w) {
    for (int64_t i = 0; i < k; ++i) names_.push_back("class" + std::to_string(i));
  }
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return (int64_t)names_.size(); }
  const std::vector<std::string>& class_names() const override { return names_; }
  int64_t label(int64_t i) const override { return i % num_classes(); }
  std::string name() const override { return "synthetic"; }
  Sample get(int64_t i) const override {
    ++calls;
    if (delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    PW_CHECK(i != fail_at, "synthetic: sample ", i, " is unreadable on purpose");
    Image img(h_, w_, 3);
    img.data = pattern_bytes((size_t)(h_ * w_ * 3), (uint32_t)i + 1);
    return Sample{img, label(i)};
  }
  mutable std::atomic<int64_t> calls{0};
  int delay_ms = 0;
  int64_t fail_at = -1;

 private:
  int64_t n_, h_, w_;
  std::vector<std::string> names_;
};

TransformConfig train_config() {
  TransformConfig t;
  t.image_size = 12;
  t.random_resized_crop = true;
  t.hflip = 0.5;
  t.randaugment = RandAugmentConfig{2, 9, 0.5, true, 0.5};
  t.erasing_prob = 0.25;
  t.mean = {0.5f, 0.4f, 0.3f};
  t.std = {0.2f, 0.2f, 0.2f};
  return t;
}

MixupConfig mix_config() {
  MixupConfig m;
  m.mixup_alpha = 0.8;
  m.cutmix_alpha = 1.0;
  return m;
}

struct Flat {
  std::vector<double> images, labels, soft;
  int64_t epoch, index;
  bool operator==(const Flat& o) const {
    return images == o.images && labels == o.labels && soft == o.soft && epoch == o.epoch && index == o.index;
  }
};
Flat flat(const Batch& b) {
  return {b.images.to_vector(), b.labels.to_vector(), b.soft_targets.defined() ? b.soft_targets.to_vector()
                                                                              : std::vector<double>{},
          b.epoch, b.index};
}

std::vector<Flat> run_epoch(DataLoader& dl, int64_t epoch, int64_t from = 0) {
  dl.set_position(epoch, from);
  std::vector<Flat> out;
  Batch b;
  while (dl.next(b)) out.push_back(flat(b));
  return out;
}

}  // namespace

TEST_CASE("batches are identical with 0, 1 and 3 workers") {
  auto ds = std::make_shared<SyntheticDataset>(23, 16, 20, 5);
  LoaderConfig c;
  c.batch_size = 4;
  c.seed = 42;
  std::vector<std::vector<Flat>> runs;
  for (int workers : {0, 1, 3}) {
    c.num_workers = workers;
    DataLoader dl(ds, Transform(train_config(), true), c, mix_config());
    CHECK(dl.num_batches() == 6);
    runs.push_back(run_epoch(dl, 2));
  }
  REQUIRE(runs[0].size() == 6);
  CHECK(runs[0] == runs[1]);
  CHECK(runs[0] == runs[2]);
  // Shapes, in-order delivery, the last partial batch.
  for (size_t i = 0; i < runs[0].size(); ++i) CHECK(runs[0][i].index == (int64_t)i);
  CHECK(runs[0].back().labels.size() == 3);
  CHECK(runs[0][0].images.size() == 4 * 3 * 12 * 12);
  CHECK(runs[0][0].soft.size() == 4 * 5);
}

TEST_CASE("epoch order: a permutation keyed by (seed, epoch); drop_last; no shuffle") {
  auto ds = std::make_shared<SyntheticDataset>(23, 8, 8, 5);
  LoaderConfig c;
  c.batch_size = 5;
  c.drop_last = true;
  c.num_workers = 2;
  c.seed = 7;
  DataLoader dl(ds, Transform(TransformConfig{}, false), c);
  CHECK(dl.num_batches() == 4);
  auto o1 = dl.epoch_order(1), o2 = dl.epoch_order(2);
  CHECK(std::set<int64_t>(o1.begin(), o1.end()).size() == 23);
  CHECK(o1 != o2);
  CHECK(o1 == dl.epoch_order(1));
  auto batches = run_epoch(dl, 1);
  REQUIRE(batches.size() == 4);
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t j = 0; j < 5; ++j) CHECK(batches[b].labels[j] == o1[b * 5 + j] % 5);
  CHECK(batches[0].soft.empty());  // no mixup: soft_targets undefined

  LoaderConfig seq = c;
  seq.shuffle = false;
  DataLoader dl2(ds, Transform(TransformConfig{}, false), seq);
  auto o = dl2.epoch_order(3);
  for (int64_t i = 0; i < 23; ++i) CHECK(o[i] == i);
}

TEST_CASE("set_position mid-epoch resumes with identical batches") {
  auto ds = std::make_shared<SyntheticDataset>(30, 16, 16, 4);
  LoaderConfig c;
  c.batch_size = 4;
  c.num_workers = 3;
  c.seed = 5;
  DataLoader full(ds, Transform(train_config(), true), c, mix_config());
  auto all = run_epoch(full, 3);
  REQUIRE(all.size() == 8);
  // A fresh loader (as after a restart) with a different worker count.
  c.num_workers = 2;
  DataLoader resumed(ds, Transform(train_config(), true), c, mix_config());
  auto tail = run_epoch(resumed, 3, 5);
  REQUIRE(tail.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(tail[(size_t)i] == all[(size_t)(5 + i)]);
  // Jumping back and forth on the same loader.
  resumed.set_position(3, 2);
  Batch b;
  REQUIRE(resumed.next(b));
  CHECK(flat(b) == all[2]);
  CHECK(resumed.batch_index() == 3);
  // A different epoch gives different batches.
  auto other = run_epoch(resumed, 4);
  CHECK(!(other[0] == all[0]));
  CHECK_THROWS_WITH_AS(resumed.set_position(3, 9), doctest::Contains("outside an epoch of 8 batches"), pw::Error);
}

TEST_CASE("next() without set_position starts at epoch 0; after the epoch it returns false") {
  auto ds = std::make_shared<SyntheticDataset>(6, 4, 4, 2);
  LoaderConfig c;
  c.batch_size = 4;
  c.num_workers = 1;
  DataLoader dl(ds, Transform(TransformConfig{}, false), c);
  Batch b;
  REQUIRE(dl.next(b));
  CHECK(b.epoch == 0);
  CHECK(b.images.shape() == Shape{4, 3, 4, 4});
  CHECK(b.labels.dtype() == DType::I64);
  REQUIRE(dl.next(b));
  CHECK(b.images.shape() == Shape{2, 3, 4, 4});
  CHECK(!dl.next(b));
  CHECK(!dl.next(b));
}

TEST_CASE("prefetch is bounded") {
  auto ds = std::make_shared<SyntheticDataset>(200, 4, 4, 2);
  LoaderConfig c;
  c.batch_size = 2;
  c.num_workers = 3;
  c.prefetch = 4;
  DataLoader dl(ds, Transform(TransformConfig{}, false), c);
  Batch b;
  REQUIRE(dl.next(b));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Batch 0 was taken, so at most batches 1..4 are built ahead.
  CHECK(ds->calls.load() <= (1 + 4) * 2);
  CHECK(ds->calls.load() >= 2 * 2);
}

TEST_CASE("a worker's exception reaches the caller with its message") {
  auto ds = std::make_shared<SyntheticDataset>(20, 4, 4, 2);
  ds->fail_at = 13;
  LoaderConfig c;
  c.batch_size = 3;
  c.shuffle = false;
  for (int workers : {0, 2}) {
    c.num_workers = workers;
    DataLoader dl(ds, Transform(TransformConfig{}, false), c);
    Batch b;
    for (int i = 0; i < 4; ++i) REQUIRE(dl.next(b));  // batches 0..3 hold samples 0..11
    CHECK_THROWS_WITH_AS(dl.next(b), doctest::Contains("sample 13 is unreadable on purpose"), pw::Error);
    CHECK(dl.next(b));  // batch 5 is fine
  }
}

TEST_CASE("images of different sizes without image_size: error names the sample") {
  struct Mixed : SyntheticDataset {
    Mixed() : SyntheticDataset(4, 5, 5, 2) {}
    Sample get(int64_t i) const override {
      Sample s = SyntheticDataset::get(i);
      if (i == 2) s.image = Image(6, 5, 3);
      return s;
    }
  };
  LoaderConfig c;
  c.batch_size = 4;
  c.shuffle = false;
  c.num_workers = 1;
  DataLoader dl(std::make_shared<Mixed>(), Transform(TransformConfig{}, false), c);
  Batch b;
  CHECK_THROWS_WITH_AS(dl.next(b), doctest::Contains("sample 2 of 'synthetic' transforms to [3,6,5]"), pw::Error);
}

TEST_CASE("destroying a loader mid-epoch does not hang") {
  auto ds = std::make_shared<SyntheticDataset>(400, 8, 8, 2);
  ds->delay_ms = 2;
  LoaderConfig c;
  c.batch_size = 4;
  c.num_workers = 4;
  auto t0 = std::chrono::steady_clock::now();
  {
    DataLoader dl(ds, Transform(train_config(), true), c);
    Batch b;
    REQUIRE(dl.next(b));
    REQUIRE(dl.next(b));
  }  // ~DataLoader with workers busy and the queue full
  {
    DataLoader never_started(ds, Transform(TransformConfig{}, false), c);
  }
  {
    DataLoader set_only(ds, Transform(TransformConfig{}, false), c);
    set_only.set_position(1, 10);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(secs < 2.0);
}

TEST_CASE("loader config errors") {
  auto ds = std::make_shared<SyntheticDataset>(5, 4, 4, 2);
  LoaderConfig c;
  c.batch_size = 0;
  CHECK_THROWS_WITH_AS(DataLoader(ds, Transform(TransformConfig{}, false), c), doctest::Contains("batch_size"),
                       pw::Error);
  c.batch_size = 8;
  c.drop_last = true;
  CHECK_THROWS_WITH_AS(DataLoader(ds, Transform(TransformConfig{}, false), c), doctest::Contains("lower batch_size"),
                       pw::Error);
}
