// Instruments for measuring the framework itself, each costing one branch when off:
//   FlopCount  -- GEMM-backed kernels report 2*M*N*K (`patchwork info`)
//   OpProfile  -- wall time per op, forward and backward (`patchwork bench train`)
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>

namespace pw {

inline thread_local int64_t* g_flop_sink = nullptr;

inline void count_flops(int64_t n) {
  if (g_flop_sink) *g_flop_sink += n;
}

struct FlopCount {
  int64_t flops = 0;
  FlopCount() : prev_(g_flop_sink) { g_flop_sink = &flops; }
  ~FlopCount() {
    g_flop_sink = prev_;
    if (prev_) *prev_ += flops;
  }
  FlopCount(const FlopCount&) = delete;
  FlopCount& operator=(const FlopCount&) = delete;
 private:
  int64_t* prev_;
};

// --- per-op wall time, for `patchwork bench train` ---
//
// While an OpProfile is alive (one at a time, on the thread that runs the
// model), the engine times every Node::backward by the node's name, and each
// op's forward is timed from the previous op's record() to its own: record()
// runs when the op's output is ready, so the interval is the op's forward work
// (plus the few lines of module glue before it). mark() restarts that interval
// (call it before a forward). Scope times named phases (optimizer, ...).
// With no OpProfile alive, each hook costs one load and branch.

struct Node;

struct OpProfile {
  using Clock = std::chrono::steady_clock;
  struct Times {
    double forward_s = 0, backward_s = 0;
    int64_t forward_calls = 0, backward_calls = 0;
  };
  // Keyed by the name pointer (names are string literals); equal names from
  // different literals are merged by whoever prints the table.
  std::unordered_map<const char*, Times> ops;
  std::unordered_map<const char*, double> phases;  // Scope name -> seconds

  OpProfile() : prev_(current()) { current() = this; mark(); }
  ~OpProfile() { current() = prev_; }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  static OpProfile*& current() {
    static thread_local OpProfile* p = nullptr;
    return p;
  }
  void mark() {
    flush();
    last_ = Clock::now();
  }
  // Called by record() (autograd/function.h). Some ops name their node only after
  // record() returns (the shape ops' CopyFn), so the name is read at the next event.
  void on_forward(std::shared_ptr<Node> n);
  void on_backward(const char* op, Clock::time_point start) {
    Times& t = ops[op];
    t.backward_s += std::chrono::duration<double>(Clock::now() - start).count();
    ++t.backward_calls;
  }
  void flush();  // books the pending forward interval under its node's name

  // Adds the scope's wall time to phases[name] of the live profile, if any.
  struct Scope {
    const char* name;
    OpProfile* p;
    Clock::time_point t0;
    explicit Scope(const char* n) : name(n), p(current()) {
      if (p) t0 = Clock::now();
    }
    ~Scope() {
      if (!p) return;
      p->flush();
      p->phases[name] += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

 private:
  OpProfile* prev_;
  Clock::time_point last_;
  std::shared_ptr<Node> pending_;  // the last recorded node, its name not yet read
  double pending_s_ = 0;
};

}  // namespace pw
