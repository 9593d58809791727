// The TCP-store process group (launches without MPI: torchrun-style variables): host
// collectives over dist/tcp_store.h, and, for CPU tensors, the tensor collectives too
// (a slow fallback: every byte passes through rank 0's store). With train.device cuda it
// is the NCCL group's host (the unique id exchange, the small collectives).
//
// Determinism: allreduce_mean all-gathers every rank's buffer and each rank sums them in
// rank order 0..W-1 in double, times 1/W, rounded once: float(sum_r double(g_r) / W),
// the same bits as the MPI backend.
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dist/process_group.h"
#include "dist/tcp_store.h"
#include "runtime/check.h"

namespace pw::dist {

namespace {

// The store's port: PW_STORE_PORT if set; under torchrun itself (its elastic agent serves
// its own store on MASTER_PORT: TORCHELASTIC_USE_AGENT_STORE=True) MASTER_PORT + 1;
// else MASTER_PORT.
int store_port(const LaunchEnv& env) {
  if (const char* p = std::getenv("PW_STORE_PORT"); p && *p) {
    char* end = nullptr;
    long v = std::strtol(p, &end, 10);
    PW_CHECK(end && *end == '\0' && v > 0 && v < 65536, "PW_STORE_PORT='", p, "' is not a TCP port (1..65535)");
    return (int)v;
  }
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  if (agent && std::string(agent) == "True" && env.master_port > 0) return env.master_port + 1;
  return env.master_port;
}

class StoreGroup final : public ProcessGroup {
 public:
  StoreGroup(const LaunchEnv& env, double timeout) {
    timeout_s = timeout;
    rank_ = env.rank;
    world_ = env.world;
    local_rank_ = env.local_rank;
    store_ = std::make_unique<TcpStore>(env.master_addr, store_port(env), rank_, world_, timeout);
    guard("the start-up barrier", [&] { store_->barrier("start"); });
  }
  const char* backend() const override { return "tcp-store"; }
  bool supports(Device d) const override { return d == Device::CPU; }

  std::vector<std::string> allgather(const std::string& mine) override {
    const int64_t s = seq_++;
    auto key = [&](int64_t n, int r) { return "ag/" + std::to_string(n) + "/" + std::to_string(r); };
    std::vector<std::string> out((size_t)world_);
    guard("an all-gather", [&] {
      store_->timeout_s = timeout_s;
      store_->set(key(s, rank_), mine);
      for (int r = 0; r < world_; ++r) out[(size_t)r] = r == rank_ ? mine : store_->get(key(s, r), r);
      // Every rank has set its key of round s, so all are past round s - 1: this rank's
      // key of round s - 2 is read by no one any more.
      if (s >= 2) store_->erase(key(s - 2, rank_));
    });
    bytes_sent += (int64_t)mine.size();
    return out;
  }
  void barrier() override {
    guard("a barrier", [&] {
      store_->timeout_s = timeout_s;
      store_->barrier("barrier");
    });
  }
  void allreduce_sum(std::vector<double>& v) override {
    std::vector<std::string> all = allgather(std::string((const char*)v.data(), v.size() * sizeof(double)));
    std::vector<double> sum(v.size(), 0.0);
    for (int r = 0; r < world_; ++r) {
      PW_CHECK(all[(size_t)r].size() == v.size() * 8, "allreduce_sum: rank ", r, " sent ", all[(size_t)r].size() / 8,
               " values, this rank ", v.size(), "; the ranks are out of step");
      const double* q = (const double*)all[(size_t)r].data();
      for (size_t i = 0; i < v.size(); ++i) sum[i] += q[i];
    }
    v = sum;
  }
  void broadcast(Tensor& t, int root) override {
    PW_CHECK(t.device() == Device::CPU, "the TCP-store group broadcasts CPU tensors, got ", t.str(), " on ",
             device_name(t.device()));
    const size_t bytes = (size_t)t.numel() * dtype_size(t.dtype());
    std::vector<std::string> all = allgather(rank_ == root ? std::string((const char*)t.raw(), bytes) : std::string());
    PW_CHECK(all[(size_t)root].size() == bytes, "broadcast: rank ", root, " sent ", all[(size_t)root].size(),
             " bytes for ", t.str());
    std::memcpy(t.raw(), all[(size_t)root].data(), bytes);
  }
  void allreduce_mean(Tensor& t) override {
    PW_CHECK(t.device() == Device::CPU && t.dtype() == DType::F32 && t.dim() == 1,
             "the TCP-store group's allreduce_mean expects a (n) f32 CPU tensor, got ", t.str());
    float* p = t.data<float>();
    const int64_t n = t.numel();
    std::vector<std::string> all = allgather(std::string((const char*)p, (size_t)n * 4));
    for (int r = 0; r < world_; ++r)
      PW_CHECK((int64_t)all[(size_t)r].size() == n * 4, "allreduce_mean: rank ", r, " sent ",
               all[(size_t)r].size() / 4, " values, this rank ", n, "; the ranks are out of step");
    const double inv = 1.0 / (double)world_;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int r = 0; r < world_; ++r) s += (double)((const float*)all[(size_t)r].data())[i];
      p[i] = (float)(s * inv);
    }
  }

 private:
  // A store error (a deadline passed, rank 0 gone) stops this rank with the message; the
  // others notice (rank 0's store goes away with it, or their own deadline passes).
  template <class F>
  void guard(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      abort(std::string(e.what()) + " (in " + what + (context.empty() ? "" : "; " + context) + "). Stopping.");
    }
  }
  std::unique_ptr<TcpStore> store_;
  int64_t seq_ = 0;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_store_group(const LaunchEnv& env, double timeout_s) {
  return std::make_unique<StoreGroup>(env, timeout_s);
}

}  // namespace pw::dist
