// DeviceLoader: a DataLoader's batches on the training device, copied ahead of
// the model so that loading overlaps compute.
//
// On CUDA it keeps two slots (double buffering). Each slot has a pinned host
// staging buffer (cuda::pinned_alloc) and device tensors for images, labels and
// soft targets. next() hands out batch k from slot k%2 and, before returning,
// starts batch k+1's H2D copy into the other slot on a side COPY stream:
//
//   compute stream: ... step k-1 ... [record free(s')] [wait ready(s)] step k ...
//   copy stream:                         [wait free(s')] copy k+1 -> s' [record ready(s')]
//
// so the copy of batch k+1 runs while step k computes, never overwrites a slot
// the compute stream may still read, and the compute stream never reads a slot
// before its copy finished. The host waits only before refilling a pinned
// buffer whose previous copy has not finished (one batch back: normally done).
//
// A batch returned by next() is valid until the next-but-one next() call (its
// slot is then refilled): do not keep its tensors across steps.
// On the CPU it simply forwards the DataLoader's batches.
#pragma once
#include <array>
#include <cstdint>

#include "data/loader.h"

namespace pw {

class DeviceLoader {
 public:
  DeviceLoader(DataLoader& loader, Device device);
  ~DeviceLoader();
  DeviceLoader(const DeviceLoader&) = delete;
  DeviceLoader& operator=(const DeviceLoader&) = delete;

  // As DataLoader::set_position; a batch already prefetched is dropped.
  void set_position(int64_t epoch, int64_t batch = 0);
  // The next batch, on the device; false once the epoch is exhausted.
  bool next(Batch& out);
  Device device() const { return device_; }

 private:
  struct Slot {
    void* pinned = nullptr;     // host staging: images | labels | soft targets
    size_t pinned_bytes = 0;
    Batch batch;                // device tensors (+ epoch, index)
    void* ready = nullptr;      // cudaEvent_t: the H2D copy into this slot is done
    void* free = nullptr;       // cudaEvent_t: the compute stream is done with this slot
    bool filled = false;        // holds a prefetched batch not yet handed out
    bool in_flight = false;     // `ready` was recorded and not yet waited by the host
  };
  bool prefetch(int s);         // loads the loader's next batch into slot s; false at the epoch's end
  void drop(int s);             // forgets a prefetched batch (the compute stream waits for its copy)

  DataLoader& loader_;
  Device device_;
  void* copy_stream_ = nullptr;  // cudaStream_t
  std::array<Slot, 2> slots_;
  int cur_ = 1;                  // slot of the batch handed out last
  bool primed_ = false;          // slot cur_^1 holds (or tried to hold) the next batch
  bool next_ok_ = false;         // whether that prefetch found a batch
};

}  // namespace pw
