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

enum Tag : int { kReduceScatter = 11, kAllGather = 12, kBroadcast = 13, kSizes = 14, kBytes = 15 };

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
    PW_CHECK(t.device() == Device::CPU && t.dtype() == DType::F32 && t.dim() == 1, "MpiGroup::allreduce_mean: ",
             "expects a (n) f32 CPU tensor, got ", t.str(), " on ", device_name(t.device()));
    float* p = t.data<float>();
    const int64_t n = t.numel(), W = world_;
    auto begin = [&](int64_t k) { return n * k / W; };
    const int64_t mine = begin(rank_), len = begin(rank_ + 1) - mine;
    // Reduce-scatter: chunk k of every rank goes to rank k, which sums them in rank order.
    rbuf_.resize((size_t)(W * len));
    std::memcpy(rbuf_.data() + rank_ * len, p + mine, (size_t)len * sizeof(float));
    reqs_.clear();
    peers_.clear();
    for (int r = 0; r < world_; ++r) {
      if (r == rank_) continue;
      post_recv(rbuf_.data() + r * len, as_count(len, "all-reduce"), MPI_FLOAT, r, kReduceScatter);
      const int64_t b = begin(r), l = begin(r + 1) - b;
      post_send(p + b, as_count(l, "all-reduce"), MPI_FLOAT, r, kReduceScatter);
      bytes_sent += l * 4;
    }
    wait_all("the gradient all-reduce (reduce-scatter)");
    const double inv = 1.0 / (double)W;
    for (int64_t i = 0; i < len; ++i) {
      double s = 0;
      for (int64_t r = 0; r < W; ++r) s += (double)rbuf_[(size_t)(r * len + i)];
      p[mine + i] = (float)(s * inv);
    }
    // All-gather: every rank's reduced chunk to every rank.
    for (int r = 0; r < world_; ++r) {
      if (r == rank_) continue;
      const int64_t b = begin(r), l = begin(r + 1) - b;
      post_recv(p + b, as_count(l, "all-reduce"), MPI_FLOAT, r, kAllGather);
      post_send(p + mine, as_count(len, "all-reduce"), MPI_FLOAT, r, kAllGather);
      bytes_sent += len * 4;
    }
    wait_all("the gradient all-reduce (all-gather)");
  }

  void broadcast(Tensor& t, int root) override {
    PW_CHECK(t.device() == Device::CPU, "MpiGroup::broadcast: ", t.str(), " is on ", device_name(t.device()),
             "; the MPI backend moves CPU tensors");
    const int64_t bytes = t.numel() * (int64_t)dtype_size(t.dtype());
    char* p = static_cast<char*>(t.raw());
    if (rank_ == root) {
      for (int r = 0; r < world_; ++r)
        if (r != root) {
          post_send(p, as_count(bytes, "broadcast"), MPI_BYTE, r, kBroadcast);
          bytes_sent += bytes;
        }
    } else {
      post_recv(p, as_count(bytes, "broadcast"), MPI_BYTE, root, kBroadcast);
    }
    wait_all("a broadcast from rank 0");
  }

  std::vector<std::string> allgather(const std::string& mine) override {
    std::vector<int64_t> sizes((size_t)world_);
    sizes[(size_t)rank_] = (int64_t)mine.size();
    int64_t my_size = (int64_t)mine.size();
    for (int r = 0; r < world_; ++r)
      if (r != rank_) {
        post_recv(&sizes[(size_t)r], 1, MPI_INT64_T, r, kSizes);
        post_send(&my_size, 1, MPI_INT64_T, r, kSizes);
      }
    wait_all("an all-gather (sizes)");
    std::vector<std::string> out((size_t)world_);
    for (int r = 0; r < world_; ++r) out[(size_t)r].resize((size_t)sizes[(size_t)r]);
    out[(size_t)rank_] = mine;
    for (int r = 0; r < world_; ++r)
      if (r != rank_) {
        post_recv(out[(size_t)r].data(), as_count(sizes[(size_t)r], "all-gather"), MPI_BYTE, r, kBytes);
        post_send(mine.data(), as_count(my_size, "all-gather"), MPI_BYTE, r, kBytes);
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
  void post_recv(void* buf, int count, MPI_Datatype type, int peer, int tag) {
    reqs_.emplace_back();
    peers_.push_back(peer);
    int rc = MPI_Irecv(buf, count, type, peer, tag, MPI_COMM_WORLD, &reqs_.back());
    if (rc != MPI_SUCCESS) abort("MPI_Irecv from rank " + std::to_string(peer) + " failed: " + mpi_error(rc));
  }
  void post_send(const void* buf, int count, MPI_Datatype type, int peer, int tag) {
    reqs_.emplace_back();
    peers_.push_back(peer);
    int rc = MPI_Isend(buf, count, type, peer, tag, MPI_COMM_WORLD, &reqs_.back());
    if (rc != MPI_SUCCESS) abort("MPI_Isend to rank " + std::to_string(peer) + " failed: " + mpi_error(rc));
  }

  // Polls the posted requests until all complete; past the deadline names the peers
  // whose messages are missing and stops every rank.
  void wait_all(const char* what) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    const int n = (int)reqs_.size();
    std::vector<int> idx((size_t)n);
    std::vector<char> done((size_t)n, 0);
    int remaining = n, idle = 0;
    while (remaining > 0) {
      int count = 0;
      int rc = MPI_Testsome(n, reqs_.data(), &count, idx.data(), MPI_STATUSES_IGNORE);
      if (rc != MPI_SUCCESS) abort("MPI error in " + std::string(what) + " with rank(s) " + missing(done) + ": " +
                                   mpi_error(rc) + context_line());
      if (count == MPI_UNDEFINED) break;
      for (int i = 0; i < count; ++i) done[(size_t)idx[(size_t)i]] = 1;
      remaining -= count;
      if (count > 0) {
        idle = 0;
        continue;
      }
      if (Clock::now() > deadline) {
        std::ostringstream os;
        os << "rank(s) " << missing(done) << " did not answer within dist.timeout_s = " << timeout_s << " s in "
           << what << "; a rank died or hangs. Stopping every rank." << context_line();
        abort(os.str());
      }
      // Spin briefly, then sleep: ranks may share cores (mpirun --oversubscribe).
      if (++idle > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    reqs_.clear();
    peers_.clear();
  }
  std::string missing(const std::vector<char>& done) const {
    std::set<int> m;
    for (size_t i = 0; i < done.size(); ++i)
      if (!done[i]) m.insert(peers_[i]);
    std::string s;
    for (int r : m) s += (s.empty() ? "" : ", ") + std::to_string(r);
    return s.empty() ? "(none)" : s;
  }
  std::string context_line() const { return context.empty() ? "" : " (" + context + ")"; }

  std::vector<MPI_Request> reqs_;
  std::vector<int> peers_;  // the peer of each request
  std::vector<float> rbuf_;
};

}  // namespace

bool have_mpi() { return true; }

std::unique_ptr<ProcessGroup> make_mpi_group(const LaunchEnv& env, double timeout_s) {
  return std::make_unique<MpiGroup>(env, timeout_s);
}

}  // namespace pw::dist
