// Process groups: the ranks of a data-parallel run and the collectives between them.
//
// Rank, world size and local rank come from the launcher's environment (launch_env):
//   mpirun (OpenMPI)   OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK
//   MPICH, Intel MPI   PMI_RANK / PMI_SIZE (MPI_LOCALRANKID)
//   srun (Slurm)       SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID
//   torchrun-style     RANK / WORLD_SIZE / LOCAL_RANK, MASTER_ADDR / MASTER_PORT
// With none of them (or a world of 1) the group is the single process and nothing is
// initialised: `patchwork train CONFIG` is unchanged.
//
// Backends: MPI (CPU tensors; -DPW_MPI=AUTO builds it when find_package(MPI) finds one)
// and NCCL (CUDA tensors; -DPW_NCCL=AUTO with the CUDA toolkit), whose unique id is
// exchanged over MPI, or, in a torchrun-style launch (no MPI launcher), over the TCP
// store on MASTER_ADDR:MASTER_PORT (dist/tcp_store.h), whose group also moves CPU
// tensors (slowly: through rank 0) when there is no MPI launcher.
//
// Determinism: allreduce_mean never leaves the arithmetic to the transport. Each rank
// owns a contiguous chunk of the buffer; the chunk's elements from every rank are
// summed in rank order 0..W-1 in double, divided by W and rounded once to float
// (reduce-scatter), then the chunks are gathered back to every rank (all-gather). So
// the result is float(sum_r double(g_r) / W) per element, bit-identical on every rank
// and in every run with the same world size, whatever buckets or MPI algorithm.
// (NCCL: ncclAllReduce with ncclAvg; deterministic for a fixed topology and NCCL
// version, not by construction; see docs/distributed.md.)
//
// Faults: no collective blocks without a deadline. The MPI backend posts nonblocking
// sends/receives per peer and polls them; when `timeout_s` passes with a peer's
// message missing, it prints which rank(s) did not answer, in what collective, and the
// trainer's context (step, last whole checkpoint), then MPI_Abort stops every rank.
// A rank that dies (SIGKILL) is also noticed by mpirun, which names it and ends the job.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace pw::dist {

struct LaunchEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string launcher = "none";  // "mpirun", "pmi", "slurm", "torchrun", "none"
  std::string master_addr;        // torchrun-style only
  int master_port = 0;
};
// Reads the variables above; a malformed or inconsistent value throws, naming it.
LaunchEnv launch_env();

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  int rank() const { return rank_; }
  int world() const { return world_; }
  int local_rank() const { return local_rank_; }
  virtual const char* backend() const = 0;

  // Host collectives (small data): every backend has them.
  // Element-wise sum over ranks, in rank order (deterministic); every rank gets it.
  virtual void allreduce_sum(std::vector<double>& v) = 0;
  // Every rank's string, by rank.
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;
  virtual void barrier() { allgather(std::string()); }

  // Tensor collectives on the backend's device (CPU for MPI, CUDA for NCCL). In place,
  // on contiguous tensors.
  virtual void broadcast(Tensor& t, int root) = 0;
  // t: (n) F32; becomes the mean over ranks (see the file comment).
  virtual void allreduce_mean(Tensor& t) = 0;
  virtual bool supports(Device d) const = 0;

  // A non-blocking collective: test() makes progress and says whether it is complete;
  // wait() completes it (within timeout_s, else every rank stops naming the missing ones).
  class Work {
   public:
    virtual ~Work() = default;
    virtual bool test() = 0;
    virtual void wait() = 0;
  };
  // allreduce_mean started without waiting; the same arithmetic, so the same bits. `slot`
  // (0..kSlots-1) tells concurrent reductions apart (the gradient buckets): at most one
  // outstanding per slot, and every rank uses the same slot for the same buffer. t must
  // stay alive and untouched until the work completes. Default (backends that cannot
  // overlap): runs allreduce_mean now and returns completed work.
  static constexpr int kSlots = 4096;
  virtual std::unique_ptr<Work> allreduce_mean_async(Tensor& t, int slot);
  // Whether allreduce_mean_async really returns before the data has moved (MPI: yes).
  virtual bool overlaps() const { return false; }

  // Prints `why` (prefixed with this rank) and stops every rank; never returns.
  [[noreturn]] virtual void abort(const std::string& why);

  double timeout_s = 300;  // the deadline of every collective (dist.timeout_s)
  std::string context;     // the trainer's state, quoted in timeout messages
  int64_t bytes_sent = 0;  // tensor bytes this rank has sent (benchmarks)

 protected:
  int rank_ = 0, world_ = 1, local_rank_ = 0;
};

// The process's group: the single process until init() finds a launcher.
ProcessGroup& process_group();
// Starts the group the launch environment asks for (once; later calls return it):
// world 1 = the single process; an MPI launcher (mpirun, srun, mpiexec): MPI (device CPU)
// or NCCL over MPI (device CUDA); torchrun-style variables alone: the TCP store's group
// (device CPU) or NCCL over it (device CUDA).
// A multi-process launch on a build without the backend it needs is refused, saying how
// to build it.
ProcessGroup& init_process_group(Device device, double timeout_s);
// Whether the MPI / NCCL backends were compiled in.
bool have_mpi();
bool have_nccl();

// Testing aid (tests/test_dist.cpp): PW_DIST_FAULT="RANK:STEP:kill|hang" makes rank RANK
// raise SIGKILL (kill) or SIGSTOP (hang) on itself when it reaches optimizer step STEP.
void maybe_inject_fault(int rank, int64_t step);

// Backend factories (dist/mpi_group.cpp, dist/nccl_group.cpp).
std::unique_ptr<ProcessGroup> make_mpi_group(const LaunchEnv& env, double timeout_s);
// torchrun-style launches (no MPI): the TCP store on MASTER_ADDR:MASTER_PORT (dist/store_group.cpp).
std::unique_ptr<ProcessGroup> make_store_group(const LaunchEnv& env, double timeout_s);
std::unique_ptr<ProcessGroup> make_nccl_group(std::unique_ptr<ProcessGroup> host, double timeout_s);

}  // namespace pw::dist
