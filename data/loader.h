// DataLoader: batches of transformed samples, built by worker threads ahead
// of the model and delivered strictly in order.
//
// Determinism: the epoch's sample order is a shuffle keyed by (seed, epoch);
// sample i's augmentation uses SampleRng(seed, epoch, i, Sample); batch b's
// mixup uses SampleRng(seed, epoch, b, Mixup). Batches are therefore identical
// for any number of workers, and set_position(epoch, b) resumes exactly.
//
// Bad files (skip_bad): a sample whose get() throws BadSampleError is replaced
// by the next sample of the epoch's order that reads (wrapping around), keeping
// the batch's size; the replacement is augmented with the bad sample's
// SampleRng stream. So the batches stay a pure function of (seed, epoch, b)
// and the set of bad files: workers and resume don't change them. Each bad
// file is reported once on stderr and counted (bad_files()).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "autograd/tensor.h"
#include "data/dataset.h"
#include "data/mixup.h"
#include "data/transforms.h"

namespace pw {

// Feature data sets (audio, Dataset::has_features): images holds the features
// (B,C,F,T_max) padded with 0; lengths, targets and target_lengths stay on the
// host (DeviceLoader moves images, labels and soft targets only).
struct Batch {
  Tensor images;        // (B,C,H,W) F32
  Tensor labels;        // (B) I64
  Tensor soft_targets;  // (B,K) F32 when mixup/cutmix is on, else undefined
  Tensor lengths;       // (B) I64 valid frames along images' last axis for padded
                        // variable-length input (audio), else undefined (Module::forward_padded)
  Tensor targets;         // (B,S) I64 token sequences for sequence losses (CTC): ids in [1, V],
                          // 0 = the CTC blank, rows padded with 0; undefined for classification
  Tensor target_lengths;  // (B) I64 valid tokens per row of targets
  int64_t epoch = 0, index = 0;  // which batch this is
};

struct LoaderConfig {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop a final partial batch
  int num_workers = 2;     // 0: batches are built on the calling thread inside next()
  int prefetch = 0;        // batches built ahead of the consumer; 0 = 2 * num_workers
  uint64_t seed = 0;
  bool skip_bad = false;   // replace unreadable samples instead of throwing (see above)
  // Distributed sampling (DistributedSampler): this process reads positions rank,
  // rank + world, rank + 2*world, ... of the epoch's (seed, epoch) order, a disjoint
  // shard; with drop_last every rank gets the same number of batches (n / (batch_size
  // * world)), and batch b of all ranks together holds positions [b*B*W, (b+1)*B*W) of
  // the order: the single-process batch b of batch size B*W. Without drop_last the
  // shards differ by at most one sample (evaluation: every sample read exactly once).
  int rank = 0, world = 1;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, Transform transform, LoaderConfig cfg,
             MixupConfig mixup = MixupConfig{});
  ~DataLoader();  // stops the workers; returns promptly even mid-epoch
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;  // per epoch, of this rank's shard
  int64_t epoch() const { return epoch_; }
  int64_t batch_index() const { return next_; }  // index of the batch next() returns next
  // The next batch returned is batch `batch` of epoch `epoch`; workers start prefetching now.
  void set_position(int64_t epoch, int64_t batch = 0);
  // Fills `out` with the next batch; false once the epoch is exhausted (call
  // set_position(epoch + 1) to go on). A worker's exception is rethrown here.
  bool next(Batch& out);
  // Indices of the dataset in epoch `epoch`'s order.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  const Dataset& dataset() const { return *ds_; }
  // Distinct bad samples skipped so far (skip_bad), over all epochs.
  int64_t bad_files() const;

 private:
  Batch build(int64_t b) const;  // pure function of (epoch_, b)
  int64_t shard_size() const;    // samples of this rank's shard per epoch
  // The samples at positions `pos` (B) of the epoch's order into out.images and out.labels:
  // images through the transform; features (audio) padded along T, with SpecAugment
  // (Dataset::augment) when training, and lengths/targets where the data set has them.
  void build_images(Batch& out, const std::vector<int64_t>& pos) const;
  void build_features(Batch& out, const std::vector<int64_t>& pos) const;
  // Sample `pos` of the epoch's order, or with skip_bad the next one that reads.
  Sample get_at(int64_t pos) const;
  void start();
  void stop();
  void worker();

  std::shared_ptr<const Dataset> ds_;
  Transform tf_;
  LoaderConfig cfg_;
  MixupConfig mix_;

  int64_t epoch_ = 0;
  std::vector<int64_t> order_;  // (size) this epoch's sample order
  int64_t next_ = 0;            // next batch to deliver
  int64_t end_ = 0;             // batches in the epoch
  bool started_ = false;

  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  int64_t claim_ = 0;                 // next batch a worker may claim
  std::map<int64_t, Result> ready_;   // built, not yet delivered
  bool stopping_ = false;
  std::vector<std::thread> threads_;

  mutable std::mutex bad_mu_;
  mutable std::set<int64_t> bad_;  // indices of the bad samples seen (skip_bad)
};

}  // namespace pw
