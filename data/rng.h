// Per-sample random streams for the input pipeline.
//
// Every random draw of the data pipeline (the epoch's sample order, each
// sample's augmentations, each batch's mixup) comes from a SampleRng whose key
// is a pure function of (seed, epoch, index, stream). Draw k of a stream is
// philox(key, k), so a sample's augmentation never depends on which worker
// thread built it, how many workers there are, or where training resumed.
#pragma once
#include <cstdint>

namespace pw {

// Which consumer a stream feeds; two streams of the same (seed, epoch, index)
// are independent.
enum class RngStream : uint64_t { Shuffle = 1, Sample = 2, Mixup = 3 };

class SampleRng {
 public:
  SampleRng(uint64_t seed, uint64_t epoch, uint64_t index, RngStream stream);

  float uniform();                          // [0,1), 24 random bits
  double uniform(double lo, double hi);     // [lo,hi)
  double uniform_open();                    // (0,1]: safe for log()
  uint64_t bits48();                        // 48 random bits (two draws)
  int64_t randint(int64_t lo, int64_t hi);  // [lo,hi] inclusive, like Python's random.randint
  bool bernoulli(double p);                 // true with probability p
  double normal();                          // N(0,1) by Box-Muller
  double gamma(double a);                   // Gamma(a, 1), Marsaglia-Tsang
  double beta(double a, double b);          // Beta(a, b) from two gammas

  uint64_t key() const { return key_; }
  uint64_t draws() const { return ctr_; }

 private:
  uint64_t key_;
  uint64_t ctr_ = 0;
};

}  // namespace pw
