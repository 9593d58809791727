// The NCCL backend: CUDA tensors, one process per GPU (the local rank picks it); the
// NCCL unique id is exchanged over the host group (MPI under an MPI launcher, the TCP
// store in a torchrun-style launch), which also carries the small host collectives. Built with -DPW_NCCL=AUTO|ON on a real CUDA build (not EMU).
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "dist/process_group.h"
#include "runtime/check.h"
#include "runtime/cuda/runtime.h"

namespace pw::dist {

namespace {

class NcclGroup final : public ProcessGroup {
 public:
  NcclGroup(std::unique_ptr<ProcessGroup> host, double timeout) : host_(std::move(host)) {
    timeout_s = timeout;
    rank_ = host_->rank();
    world_ = host_->world();
    local_rank_ = host_->local_rank();
    int ndev = 0;
    PW_CHECK(cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0, "rank ", rank_,
             ": train.device is cuda but this node shows no CUDA device");
    PW_CHECK(local_rank_ < ndev, "rank ", rank_, " has local rank ", local_rank_, " but its node has ", ndev,
             " GPUs; launch at most one process per GPU (e.g. srun --ntasks-per-node=", ndev, ")");
    PW_CHECK(cudaSetDevice(local_rank_) == cudaSuccess, "rank ", rank_, ": cudaSetDevice(", local_rank_, ") failed");
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host_->timeout_s = timeout;
    std::vector<std::string> ids = host_->allgather(rank_ == 0 ? std::string((const char*)&id, sizeof id) : "");
    PW_CHECK(ids[0].size() == sizeof id, "NCCL: rank 0 sent no unique id");
    std::memcpy(&id, ids[0].data(), sizeof id);
    check(ncclCommInitRank(&comm_, world_, id, rank_), "ncclCommInitRank");
  }
  ~NcclGroup() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  const char* backend() const override { return "nccl"; }
  bool supports(Device d) const override { return d == Device::CUDA; }

  [[noreturn]] void abort(const std::string& why) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_->abort(why);
    std::_Exit(1);  // (host_->abort does not return)
  }

  void allreduce_mean(Tensor& t) override {
    PW_CHECK(t.device() == Device::CUDA && t.dtype() == DType::F32 && t.dim() == 1,
             "NcclGroup::allreduce_mean: expects a (n) f32 CUDA tensor, got ", t.str());
    float* p = t.data<float>();
    check(ncclAllReduce(p, p, (size_t)t.numel(), ncclFloat, ncclAvg, comm_, stream()), "ncclAllReduce");
    bytes_sent += 2 * t.numel() * 4 * (world_ - 1) / world_;  // ring all-reduce
    wait("the gradient all-reduce");
  }
  void broadcast(Tensor& t, int root) override {
    PW_CHECK(t.device() == Device::CUDA, "NcclGroup::broadcast: ", t.str(), " is not on the GPU");
    const size_t bytes = (size_t)t.numel() * dtype_size(t.dtype());
    check(ncclBroadcast(t.raw(), t.raw(), bytes, ncclChar, root, comm_, stream()), "ncclBroadcast");
    if (rank_ == root) bytes_sent += (int64_t)bytes;
    wait("a broadcast from rank 0");
  }
  void allreduce_sum(std::vector<double>& v) override {
    host_->context = context;
    host_->allreduce_sum(v);
  }
  std::vector<std::string> allgather(const std::string& mine) override {
    host_->context = context;
    return host_->allgather(mine);
  }

 private:
  static cudaStream_t stream() { return (cudaStream_t)cuda::compute_stream(); }
  void check(ncclResult_t r, const char* what) {
    if (r != ncclSuccess) abort(std::string(what) + " failed: " + ncclGetErrorString(r));
  }
  // Waits for the stream with a deadline; NCCL's own async errors stop it early.
  void wait(const char* what) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      cudaError_t e = cudaStreamQuery(stream());
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) abort(std::string(what) + ": CUDA error " + cudaGetErrorString(e));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess) abort(std::string(what) + ": NCCL error " + ncclGetErrorString(async));
      if (Clock::now() > deadline)
        abort(std::string(what) + " did not complete within dist.timeout_s = " + std::to_string(timeout_s) +
              " s: a rank died or hangs (NCCL does not say which; mpirun/srun name a rank that died)" +
              (context.empty() ? "" : " (" + context + ")"));
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  std::unique_ptr<ProcessGroup> host_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool have_nccl() { return true; }

std::unique_ptr<ProcessGroup> make_nccl_group(std::unique_ptr<ProcessGroup> host, double timeout_s) {
  return std::make_unique<NcclGroup>(std::move(host), timeout_s);
}

}  // namespace pw::dist
