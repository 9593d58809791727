// The MPI backend: CPU tensors, deterministic reductions, deadlines on every collective
// (dist/process_group.h). Only the calling thread talks to MPI (MPI_THREAD_FUNNELED).
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include "dist/process_group.h"
#include "runtime/check.h"

namespace pw::dist {

namespace {

// Message tags; the gradient buckets' nonblocking all-reduces use kAsyncBase + 2 slot (+1).
enum Tag : int { kReduceScatter = 11, kAllGather = 12, kBroadcast = 13, kSizes = 14, kBytes = 15, kAsyncBase = 100 };

std::string mpi_error(int rc) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, buf, &len);
  return std::string(buf, (size_t)len);
}

int as_count(int64_t n, const char* what) {
  PW_CHECK(n >= 0 && n < (int64_t)1 << 31, "MPI ", what, ": message of ", n,
           " elements is over MPI's int count; lower dist.bucket_mb");
  return (int)n;
}

// Posted nonblocking requests and the peer of each; polled by MpiGroup::poll.
struct Requests {
  std::vector<MPI_Request> reqs;
  std::vector<int> peers;
  std::vector<char> done;
  std::vector<int> idx;
  int remaining = 0;
  void clear() {
    reqs.clear();
    peers.clear();
    done.clear();
    remaining = 0;
  }
};

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup(const LaunchEnv& env, double timeout) {
    timeout_s = timeout;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    }
    // Errors come back as return codes (a dead peer is reported, not a crash inside MPI).
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    local_rank_ = env.local_rank;
    PW_CHECK(world_ == env.world && rank_ == env.rank, "MPI says rank ", rank_, " of ", world_, " but the launcher (",
             env.launcher, ") said rank ", env.rank, " of ", env.world,
             "; launch with the MPI that patchwork was built against (mpirun, or srun --mpi=pmix)");
  }
  ~MpiGroup() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
  const char* backend() const override { return "mpi"; }
  bool supports(Device d) const override { return d == Device::CPU; }

  [[noreturn]] void abort(const std::string& why) override {
    std::fprintf(stderr, "patchwork [rank %d/%d]: %s\n", rank_, world_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }

  void allreduce_mean(Tensor& t) override {
    MeanWork w(*this, t, kReduceScatter, kAllGather);
    w.wait();
  }
  std::unique_ptr<Work> allreduce_mean_async(Tensor& t, int slot) override {
    PW_CHECK(slot >= 0 && slot < kSlots, "allreduce_mean_async: slot ", slot, " is outside 0..", kSlots - 1,
             "; raise dist.bucket_mb (fewer buckets)");
    return std::make_unique<MeanWork>(*this, t, kAsyncBase + 2 * slot, kAsyncBase + 2 * slot + 1);
  }
  bool overlaps() const override { return true; }

  // The deterministic mean (dist/process_group.h) as a two-phase nonblocking collective:
  // reduce-scatter (chunk k of every rank to rank k, summed there in rank order 0..W-1 in
  // double), then all-gather of the reduced chunks. test() advances it as far as the
  // messages that have arrived allow; only MPI calls make progress (MPI has no progress
  // thread here), so the reducer calls test() on every gradient-ready event.
  class MeanWork final : public Work {
   public:
    MeanWork(MpiGroup& g, Tensor& t, int tag_rs, int tag_ag) : g_(g), tag_ag_(tag_ag) {
      PW_CHECK(t.device() == Device::CPU && t.dtype() == DType::F32 && t.dim() == 1, "MpiGroup::allreduce_mean: ",
               "expects a (n) f32 CPU tensor, got ", t.str(), " on ", device_name(t.device()));
      p_ = t.data<float>();
      n_ = t.numel();
      W_ = g.world_;
      mine_ = begin(g.rank_);
      len_ = begin(g.rank_ + 1) - mine_;
      // Reduce-scatter: chunk k of every rank goes to rank k, which sums them in rank order.
      rbuf_.resize((size_t)(W_ * len_));
      std::memcpy(rbuf_.data() + g.rank_ * len_, p_ + mine_, (size_t)len_ * sizeof(float));
      for (int r = 0; r < g.world_; ++r) {
        if (r == g.rank_) continue;
        g.post_recv(q_, rbuf_.data() + r * len_, as_count(len_, "all-reduce"), MPI_FLOAT, r, tag_rs);
        const int64_t b = begin(r), l = begin(r + 1) - b;
        g.post_send(q_, p_ + b, as_count(l, "all-reduce"), MPI_FLOAT, r, tag_rs);
        g.bytes_sent += l * 4;
      }
    }
    ~MeanWork() override {
      // Abandoned unfinished (an error unwinding on this rank, which then stops the job):
      // cancel what is pending so MPI never writes into freed memory.
      if (phase_ == kDone) return;
      for (size_t i = 0; i < q_.reqs.size(); ++i)
        if (!q_.done[i] && q_.reqs[i] != MPI_REQUEST_NULL) {
          MPI_Cancel(&q_.reqs[i]);
          MPI_Request_free(&q_.reqs[i]);
        }
    }
    bool test() override {
      while (phase_ != kDone && g_.poll(q_, what())) advance();
      return phase_ == kDone;
    }
    void wait() override {
      using Clock = std::chrono::steady_clock;
      const auto deadline = Clock::now() + std::chrono::duration<double>(g_.timeout_s);
      int idle = 0;
      while (!test()) {
        if (Clock::now() > deadline) g_.timed_out(q_, what());
        // Spin briefly, then sleep: ranks may share cores (mpirun --oversubscribe).
        if (++idle > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }

   private:
    enum Phase { kScatter, kGather, kDone };
    int64_t begin(int64_t k) const { return n_ * k / W_; }
    const char* what() const {
      return phase_ == kScatter ? "the gradient all-reduce (reduce-scatter)" : "the gradient all-reduce (all-gather)";
    }
    void advance() {
      q_.clear();
      if (phase_ == kGather) {
        phase_ = kDone;
        return;
      }
      const double inv = 1.0 / (double)W_;
      for (int64_t i = 0; i < len_; ++i) {
        double s = 0;
        for (int64_t r = 0; r < W_; ++r) s += (double)rbuf_[(size_t)(r * len_ + i)];
        p_[mine_ + i] = (float)(s * inv);
      }
      // All-gather: every rank's reduced chunk to every rank.
      for (int r = 0; r < g_.world_; ++r) {
        if (r == g_.rank_) continue;
        const int64_t b = begin(r), l = begin(r + 1) - b;
        g_.post_recv(q_, p_ + b, as_count(l, "all-reduce"), MPI_FLOAT, r, tag_ag_);
        g_.post_send(q_, p_ + mine_, as_count(len_, "all-reduce"), MPI_FLOAT, r, tag_ag_);
        g_.bytes_sent += len_ * 4;
      }
      phase_ = kGather;
    }
    MpiGroup& g_;
    int tag_ag_;
    float* p_ = nullptr;
    int64_t n_ = 0, W_ = 1, mine_ = 0, len_ = 0;
    std::vector<float> rbuf_;
    Requests q_;
    Phase phase_ = kScatter;
  };

  void broadcast(Tensor& t, int root) override {
    PW_CHECK(t.device() == Device::CPU, "MpiGroup::broadcast: ", t.str(), " is on ", device_name(t.device()),
             "; the MPI backend moves CPU tensors");
    const int64_t bytes = t.numel() * (int64_t)dtype_size(t.dtype());
    char* p = static_cast<char*>(t.raw());
    if (rank_ == root) {
      for (int r = 0; r < world_; ++r)
        if (r != root) {
          post_send(q_, p, as_count(bytes, "broadcast"), MPI_BYTE, r, kBroadcast);
          bytes_sent += bytes;
        }
    } else {
      post_recv(q_, p, as_count(bytes, "broadcast"), MPI_BYTE, root, kBroadcast);
    }
    wait_all("a broadcast from rank 0");
  }

  std::vector<std::string> allgather(const std::string& mine) override {
    std::vector<int64_t> sizes((size_t)world_);
    sizes[(size_t)rank_] = (int64_t)mine.size();
    int64_t my_size = (int64_t)mine.size();
    for (int r = 0; r < world_; ++r)
      if (r != rank_) {
        post_recv(q_, &sizes[(size_t)r], 1, MPI_INT64_T, r, kSizes);
        post_send(q_, &my_size, 1, MPI_INT64_T, r, kSizes);
      }
    wait_all("an all-gather (sizes)");
    std::vector<std::string> out((size_t)world_);
    for (int r = 0; r < world_; ++r) out[(size_t)r].resize((size_t)sizes[(size_t)r]);
    out[(size_t)rank_] = mine;
    for (int r = 0; r < world_; ++r)
      if (r != rank_) {
        post_recv(q_, out[(size_t)r].data(), as_count(sizes[(size_t)r], "all-gather"), MPI_BYTE, r, kBytes);
        post_send(q_, mine.data(), as_count(my_size, "all-gather"), MPI_BYTE, r, kBytes);
      }
    wait_all("an all-gather");
    return out;
  }

  void allreduce_sum(std::vector<double>& v) override {
    std::string mine((const char*)v.data(), v.size() * sizeof(double));
    std::vector<std::string> all = allgather(mine);
    std::vector<double> sum(v.size(), 0.0);
    for (int r = 0; r < world_; ++r) {
      PW_CHECK(all[(size_t)r].size() == mine.size(), "allreduce_sum: rank ", r, " sent ", all[(size_t)r].size() / 8,
               " values, this rank ", v.size(), "; the ranks are out of step");
      const double* q = (const double*)all[(size_t)r].data();
      for (size_t i = 0; i < v.size(); ++i) sum[i] += q[i];
    }
    v = sum;
  }

 private:
  void post_recv(Requests& q, void* buf, int count, MPI_Datatype type, int peer, int tag) {
    q.reqs.emplace_back();
    q.peers.push_back(peer);
    q.done.push_back(0);
    ++q.remaining;
    int rc = MPI_Irecv(buf, count, type, peer, tag, MPI_COMM_WORLD, &q.reqs.back());
    if (rc != MPI_SUCCESS) abort("MPI_Irecv from rank " + std::to_string(peer) + " failed: " + mpi_error(rc));
  }
  void post_send(Requests& q, const void* buf, int count, MPI_Datatype type, int peer, int tag) {
    q.reqs.emplace_back();
    q.peers.push_back(peer);
    q.done.push_back(0);
    ++q.remaining;
    int rc = MPI_Isend(buf, count, type, peer, tag, MPI_COMM_WORLD, &q.reqs.back());
    if (rc != MPI_SUCCESS) abort("MPI_Isend to rank " + std::to_string(peer) + " failed: " + mpi_error(rc));
  }

  // One MPI_Testsome over q's requests: true once every one has completed.
  bool poll(Requests& q, const char* what) {
    if (q.remaining == 0) return true;
    const int n = (int)q.reqs.size();
    q.idx.resize((size_t)n);
    int count = 0;
    int rc = MPI_Testsome(n, q.reqs.data(), &count, q.idx.data(), MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS)
      abort("MPI error in " + std::string(what) + " with rank(s) " + missing(q) + ": " + mpi_error(rc) +
            context_line());
    if (count == MPI_UNDEFINED) {  // no active request left
      q.remaining = 0;
      return true;
    }
    for (int i = 0; i < count; ++i) q.done[(size_t)q.idx[(size_t)i]] = 1;
    q.remaining -= count;
    return q.remaining == 0;
  }
  [[noreturn]] void timed_out(const Requests& q, const char* what) {
    std::ostringstream os;
    os << "rank(s) " << missing(q) << " did not answer within dist.timeout_s = " << timeout_s << " s in " << what
       << "; a rank died or hangs. Stopping every rank." << context_line();
    abort(os.str());
  }

  // Polls q_ until all complete; past the deadline names the peers whose messages are
  // missing and stops every rank.
  void wait_all(const char* what) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    int idle = 0, left = q_.remaining;
    while (!poll(q_, what)) {
      if (q_.remaining < left) {
        left = q_.remaining;
        idle = 0;
        continue;
      }
      if (Clock::now() > deadline) timed_out(q_, what);
      // Spin briefly, then sleep: ranks may share cores (mpirun --oversubscribe).
      if (++idle > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    q_.clear();
  }
  std::string missing(const Requests& q) const {
    std::set<int> m;
    for (size_t i = 0; i < q.done.size(); ++i)
      if (!q.done[i]) m.insert(q.peers[i]);
    std::string s;
    for (int r : m) s += (s.empty() ? "" : ", ") + std::to_string(r);
    return s.empty() ? "(none)" : s;
  }
  std::string context_line() const { return context.empty() ? "" : " (" + context + ")"; }

  Requests q_;  // the blocking collectives' requests
};

}  // namespace

bool have_mpi() { return true; }

std::unique_ptr<ProcessGroup> make_mpi_group(const LaunchEnv& env, double timeout_s) {
  return std::make_unique<MpiGroup>(env, timeout_s);
}

}  // namespace pw::dist
