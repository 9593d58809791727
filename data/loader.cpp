#include "data/loader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "runtime/check.h"

namespace pw {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, Transform transform, LoaderConfig cfg,
                       MixupConfig mixup)
    : ds_(std::move(dataset)), tf_(std::move(transform)), cfg_(cfg), mix_(mixup) {
  PW_CHECK(ds_ != nullptr, "DataLoader: null dataset");
  PW_CHECK(cfg_.batch_size > 0, "DataLoader: batch_size must be > 0, got ", cfg_.batch_size);
  PW_CHECK(cfg_.world >= 1 && cfg_.rank >= 0 && cfg_.rank < cfg_.world, "DataLoader: rank ", cfg_.rank,
           " is outside a world of ", cfg_.world);
  PW_CHECK(cfg_.num_workers >= 0 && cfg_.prefetch >= 0, "DataLoader: num_workers and prefetch must be >= 0, got ",
           cfg_.num_workers, " and ", cfg_.prefetch);
  PW_CHECK(ds_->size() > 0, "DataLoader: data set '", ds_->name(), "' is empty");
  PW_CHECK(!mix_.enabled() || ds_->num_classes() > 0, "DataLoader: mixup needs the number of classes");
  PW_CHECK(!mix_.enabled() || !ds_->variable_length(), "DataLoader: mixup/cutmix mixes whole inputs and cannot mix the "
           "padded variable-length samples of '", ds_->name(), "'; set data.mixup_alpha and data.cutmix_alpha to 0");
  if (cfg_.prefetch == 0) cfg_.prefetch = std::max(2, 2 * cfg_.num_workers);
  end_ = num_batches();
  PW_CHECK(end_ > 0, "DataLoader: batch_size ", cfg_.batch_size, " with drop_last leaves no batch of the ",
           ds_->size(), " samples of '", ds_->name(), "'; lower batch_size");
}

DataLoader::~DataLoader() { stop(); }

int64_t DataLoader::shard_size() const {
  const int64_t n = ds_->size(), W = cfg_.world, r = cfg_.rank;
  if (W == 1) return n;
  return cfg_.drop_last ? n / W : (n - r + W - 1) / W;
}

int64_t DataLoader::num_batches() const {
  const int64_t n = shard_size(), b = cfg_.batch_size;
  return cfg_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order((size_t)ds_->size());
  std::iota(order.begin(), order.end(), 0);
  if (!cfg_.shuffle) return order;
  // Fisher-Yates from the (seed, epoch) stream: the order is a pure function of both.
  SampleRng rng(cfg_.seed, (uint64_t)epoch, 0, RngStream::Shuffle);
  for (int64_t i = (int64_t)order.size() - 1; i > 0; --i) std::swap(order[(size_t)i], order[(size_t)rng.randint(0, i)]);
  return order;
}

void DataLoader::set_position(int64_t epoch, int64_t batch) {
  PW_CHECK(epoch >= 0 && batch >= 0 && batch <= end_, "DataLoader::set_position: position (epoch ", epoch,
           ", batch ", batch, ") is outside an epoch of ", end_, " batches");
  stop();
  if (epoch != epoch_ || order_.empty()) order_ = epoch_order(epoch);
  epoch_ = epoch;
  next_ = batch;
  start();
}

void DataLoader::start() {
  stopping_ = false;
  claim_ = next_;
  ready_.clear();
  started_ = true;
  for (int w = 0; w < cfg_.num_workers; ++w) threads_.emplace_back([this] { worker(); });
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  ready_.clear();
  started_ = false;
}

void DataLoader::worker() {
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lk(mu_);
      // Bounded prefetch: never more than `prefetch` batches beyond the consumer.
      work_cv_.wait(lk, [&] { return stopping_ || claim_ >= end_ || claim_ < next_ + cfg_.prefetch; });
      if (stopping_ || claim_ >= end_) return;
      b = claim_++;
    }
    Result r;
    try {
      r.batch = build(b);
    } catch (...) {
      r.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      ready_.emplace(b, std::move(r));
    }
    ready_cv_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  if (!started_) set_position(epoch_, next_);
  if (next_ >= end_) return false;
  if (cfg_.num_workers == 0) {
    const int64_t b = next_++;  // a failed batch is skipped, as with workers
    out = build(b);
    return true;
  }
  Result r;
  {
    std::unique_lock<std::mutex> lk(mu_);
    ready_cv_.wait(lk, [&] { return ready_.count(next_) > 0; });
    auto it = ready_.find(next_);
    r = std::move(it->second);
    ready_.erase(it);
    ++next_;
  }
  work_cv_.notify_all();  // a prefetch slot is free
  if (r.error) std::rethrow_exception(r.error);
  out = std::move(r.batch);
  return true;
}

int64_t DataLoader::bad_files() const {
  std::lock_guard<std::mutex> lk(bad_mu_);
  return (int64_t)bad_.size();
}

Sample DataLoader::get_at(int64_t pos) const {
  const int64_t n = (int64_t)order_.size();
  if (!cfg_.skip_bad) return ds_->get(order_[(size_t)pos]);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t idx = order_[(size_t)((pos + k) % n)];
    {
      std::lock_guard<std::mutex> lk(bad_mu_);
      if (bad_.count(idx)) continue;  // known bad: not decoded again
    }
    try {
      return ds_->get(idx);
    } catch (const BadSampleError& e) {
      std::lock_guard<std::mutex> lk(bad_mu_);
      if (bad_.insert(idx).second)
        std::fprintf(stderr, "patchwork: skipping %s (sample %lld of '%s'): %s [data.skip_bad_files]\n",
                     e.path.c_str(), (long long)idx, ds_->name().c_str(), e.reason.c_str());
    }
  }
  PW_FAIL("DataLoader: every one of the ", n, " samples of '", ds_->name(),
          "' is unreadable; run `patchwork data check` on the config");
}

Batch DataLoader::build(int64_t b) const {
  const int64_t n = shard_size();
  const int64_t first = b * cfg_.batch_size;
  const int64_t B = std::min(cfg_.batch_size, n - first);
  // Position in the epoch's order of this rank's j-th sample of the batch.
  std::vector<int64_t> pos((size_t)B);
  for (int64_t j = 0; j < B; ++j) pos[(size_t)j] = cfg_.rank + cfg_.world * (first + j);
  Batch out;
  out.epoch = epoch_;
  out.index = b;
  out.labels = empty({B}, DType::I64);
  if (ds_->has_features()) {
    build_features(out, pos);
  } else {
    build_images(out, pos);
  }
  if (mix_.enabled() && tf_.train()) {
    // One stream per (batch, rank): the ranks' halves of a global batch mix independently.
    const uint64_t key = cfg_.world == 1 ? (uint64_t)b : (uint64_t)(b * cfg_.world + cfg_.rank);
    SampleRng rng(cfg_.seed, (uint64_t)epoch_, key, RngStream::Mixup);
    out.soft_targets = mixup_batch(out.images, out.labels, ds_->num_classes(), mix_, rng);
  }
  return out;
}

void DataLoader::build_images(Batch& out, const std::vector<int64_t>& pos) const {
  const int64_t B = (int64_t)pos.size();
  int64_t* labels = out.labels.data<int64_t>();
  Shape shape;
  float* dst = nullptr;
  int64_t per = 0;
  for (int64_t j = 0; j < B; ++j) {
    const int64_t idx = order_[(size_t)pos[(size_t)j]];
    Sample s = get_at(pos[(size_t)j]);
    Shape sj = tf_.output_shape(s.image);
    if (j == 0) {
      shape = sj;
      out.images = empty({B, shape[0], shape[1], shape[2]}, DType::F32);
      dst = out.images.data<float>();
      per = numel_of(shape);
    }
    PW_CHECK(sj == shape, "DataLoader: sample ", idx, " of '", ds_->name(), "' transforms to ", shape_str(sj),
             " but sample ", order_[(size_t)pos[0]], " of the same batch to ", shape_str(shape),
             "; set image_size so every image comes out the same size");
    SampleRng rng(cfg_.seed, (uint64_t)epoch_, (uint64_t)idx, RngStream::Sample);
    tf_.apply(s.image, rng, dst + j * per);
    labels[j] = s.label;
  }
}

void DataLoader::build_features(Batch& out, const std::vector<int64_t>& pos) const {
  const int64_t B = (int64_t)pos.size();
  int64_t* labels = out.labels.data<int64_t>();
  std::vector<Sample> ss((size_t)B);
  int64_t C = 0, F = 0, T = 0, S = 0;
  for (int64_t j = 0; j < B; ++j) {
    const int64_t idx = order_[(size_t)pos[(size_t)j]];
    Sample& s = ss[(size_t)j] = get_at(pos[(size_t)j]);
    PW_CHECK(s.features.defined() && s.features.dim() == 3 && s.features.dtype() == DType::F32, "DataLoader: sample ",
             idx, " of '", ds_->name(), "' has features ", s.features.defined() ? s.features.str() : "undefined",
             ", expected (C,F,T) f32");
    if (j == 0) {
      C = s.features.size(0);
      F = s.features.size(1);
    }
    PW_CHECK(s.features.size(0) == C && s.features.size(1) == F, "DataLoader: sample ", idx, " of '", ds_->name(),
             "' has features ", s.features.str(), " but sample ", order_[(size_t)pos[0]], " has (", C, ",", F,
             ",T); every sample needs the same channels and bins");
    PW_CHECK(ds_->variable_length() || j == 0 || s.features.size(2) == T, "DataLoader: sample ", idx, " of '",
             ds_->name(), "' has ", s.features.size(2), " frames but sample ", order_[(size_t)pos[0]], " has ", T,
             "; a fixed-length data set must give every sample the same length");
    if (tf_.train()) {  // SpecAugment: the sample's own stream, as the image transforms
      SampleRng rng(cfg_.seed, (uint64_t)epoch_, (uint64_t)idx, RngStream::Sample);
      ds_->augment(s, rng);
    }
    T = std::max(T, s.features.size(2));
    S = std::max(S, (int64_t)s.tokens.size());
    labels[j] = s.label;
  }
  // Padded with 0 (the per-utterance mean) past each sample's frames.
  out.images = zeros({B, C, F, T}, DType::F32);
  float* dst = out.images.data<float>();
  for (int64_t j = 0; j < B; ++j) {
    const Tensor& x = ss[(size_t)j].features;
    const int64_t Tj = x.size(2);
    const float* src = x.data<float>();
    for (int64_t r = 0; r < C * F; ++r) std::memcpy(dst + (j * C * F + r) * T, src + r * Tj, (size_t)Tj * sizeof(float));
  }
  if (ds_->variable_length()) {
    out.lengths = empty({B}, DType::I64);
    for (int64_t j = 0; j < B; ++j) out.lengths.data<int64_t>()[j] = ss[(size_t)j].features.size(2);
  }
  if (S > 0) {
    out.targets = zeros({B, S}, DType::I64);
    out.target_lengths = empty({B}, DType::I64);
    for (int64_t j = 0; j < B; ++j) {
      const std::vector<int64_t>& tk = ss[(size_t)j].tokens;
      PW_CHECK(!tk.empty(), "DataLoader: sample ", order_[(size_t)pos[(size_t)j]], " of '", ds_->name(),
               "' has no target tokens but others of its batch do");
      std::copy(tk.begin(), tk.end(), out.targets.data<int64_t>() + j * S);
      out.target_lengths.data<int64_t>()[j] = (int64_t)tk.size();
    }
  }
}

}  // namespace pw
