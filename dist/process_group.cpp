#include "dist/process_group.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/check.h"

namespace pw::dist {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name, int lo) {
  const char* v = env(name);
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  PW_CHECK(end && *end == '\0' && x >= lo && x < (1L << 30), "environment variable ", name, "='", v,
           "' is not an integer >= ", lo, "; the launcher (mpirun, srun, torchrun) sets it, check the launch command");
  return (int)x;
}

// World of one: every collective is the identity.
struct LocalGroup final : ProcessGroup {
  const char* backend() const override { return "local"; }
  void allreduce_sum(std::vector<double>&) override {}
  std::vector<std::string> allgather(const std::string& mine) override { return {mine}; }
  void broadcast(Tensor&, int) override {}
  void allreduce_mean(Tensor&) override {}
  bool supports(Device) const override { return true; }
};

std::unique_ptr<ProcessGroup>& current() {
  static std::unique_ptr<ProcessGroup> g = std::make_unique<LocalGroup>();
  return g;
}
bool initialised = false;

}  // namespace

LaunchEnv launch_env() {
  LaunchEnv e;
  if (env("OMPI_COMM_WORLD_SIZE")) {
    e.launcher = "mpirun";
    e.world = env_int("OMPI_COMM_WORLD_SIZE", 1);
    e.rank = env("OMPI_COMM_WORLD_RANK") ? env_int("OMPI_COMM_WORLD_RANK", 0) : 0;
    e.local_rank = env("OMPI_COMM_WORLD_LOCAL_RANK") ? env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0) : 0;
  } else if (env("PMI_SIZE")) {
    e.launcher = "pmi";
    e.world = env_int("PMI_SIZE", 1);
    e.rank = env("PMI_RANK") ? env_int("PMI_RANK", 0) : 0;
    e.local_rank = env("MPI_LOCALRANKID") ? env_int("MPI_LOCALRANKID", 0) : 0;
  } else if (env("SLURM_NTASKS") && env("SLURM_PROCID") && env("SLURM_STEP_ID")) {  // inside an srun step
    e.launcher = "slurm";
    e.world = env_int("SLURM_NTASKS", 1);
    e.rank = env_int("SLURM_PROCID", 0);
    e.local_rank = env("SLURM_LOCALID") ? env_int("SLURM_LOCALID", 0) : 0;
  } else if (env("WORLD_SIZE")) {
    e.launcher = "torchrun";
    e.world = env_int("WORLD_SIZE", 1);
    e.rank = env("RANK") ? env_int("RANK", 0) : 0;
    e.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", 0) : 0;
  }
  if (env("MASTER_ADDR")) e.master_addr = env("MASTER_ADDR");
  if (env("MASTER_PORT")) e.master_port = env_int("MASTER_PORT", 1);
  PW_CHECK(e.rank < e.world, "launcher (", e.launcher, "): rank ", e.rank, " is not below the world size ", e.world,
           "; check the launch command's environment");
  return e;
}

void ProcessGroup::abort(const std::string& why) {
  std::fprintf(stderr, "patchwork [rank %d/%d]: %s\n", rank_, world_, why.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

namespace {
struct DoneWork final : ProcessGroup::Work {
  bool test() override { return true; }
  void wait() override {}
};
}  // namespace

std::unique_ptr<ProcessGroup::Work> ProcessGroup::allreduce_mean_async(Tensor& t, int) {
  allreduce_mean(t);
  return std::make_unique<DoneWork>();
}

ProcessGroup& process_group() { return *current(); }

#ifndef PW_HAVE_MPI
bool have_mpi() { return false; }
std::unique_ptr<ProcessGroup> make_mpi_group(const LaunchEnv& e, double) {
  PW_FAIL("launched as rank ", e.rank, " of ", e.world, " (", e.launcher,
          ") but this patchwork was built without MPI; install libopenmpi-dev (scripts/install_deps.sh) and "
          "rebuild with -DPW_MPI=AUTO (or ON), or run one process");
}
#endif
#ifndef PW_HAVE_NCCL
bool have_nccl() { return false; }
std::unique_ptr<ProcessGroup> make_nccl_group(std::unique_ptr<ProcessGroup> host, double) {
  PW_FAIL("train.device is cuda with ", host->world(), " processes, but this patchwork was built without NCCL; ",
          "build with the CUDA toolkit's NCCL (-DPW_CUDA=ON -DPW_NCCL=ON), or train on the CPU (MPI)");
}
#endif

ProcessGroup& init_process_group(Device device, double timeout_s) {
  if (initialised) {
    current()->timeout_s = timeout_s;
    return *current();
  }
  const LaunchEnv e = launch_env();
  initialised = true;
  if (e.world == 1) return *current();
  // torchrun-style (RANK/WORLD_SIZE without an MPI launcher's variables): the TCP store.
  std::unique_ptr<ProcessGroup> g =
      e.launcher == "torchrun" ? make_store_group(e, timeout_s) : make_mpi_group(e, timeout_s);
  if (device != Device::CPU) g = make_nccl_group(std::move(g), timeout_s);
  current() = std::move(g);
  return *current();
}

void maybe_inject_fault(int rank, int64_t step) {
  static const char* spec = env("PW_DIST_FAULT");
  if (!spec) return;
  int r = -1;
  long long s = -1;
  char what[16] = {0};
  if (std::sscanf(spec, "%d:%lld:%15s", &r, &s, what) != 3 || r != rank || s != step) return;
  std::fprintf(stderr, "patchwork [rank %d]: PW_DIST_FAULT: %s at step %lld\n", rank, what, s);
  std::fflush(stderr);
  raise(std::strcmp(what, "hang") == 0 ? SIGSTOP : SIGKILL);
}

}  // namespace pw::dist
