// The TCP store of launches without MPI (dist/tcp_store.h): 3 processes (fork) on
// 127.0.0.1 with a free port exchange blobs and pass barriers; a rank that never arrives
// is named within the timeout; a rank whose store server never appears says where it
// tried to connect.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "dist/tcp_store.h"
#include "runtime/check.h"
#include "test_data_util.h"

using namespace pw;
using namespace pw::dist;

namespace {

// Runs body(rank) in `world` forked children; returns each child's exit status. A
// child's error message goes to dir/rank<r>.err. Children exit with _exit: no test
// framework teardown in them.
std::vector<int> run_ranks(int world, const std::string& dir, const std::function<int(int)>& body) {
  std::vector<pid_t> pids;
  std::fflush(nullptr);
  for (int r = 0; r < world; ++r) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 1;
      try {
        rc = body(r);
      } catch (const std::exception& e) {
        std::ofstream(dir + "/rank" + std::to_string(r) + ".err") << e.what();
        rc = 3;
      }
      std::fflush(nullptr);
      _exit(rc);
    }
    pids.push_back(pid);
  }
  std::vector<int> rcs;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    rcs.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return rcs;
}
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("TCP store: 3 processes exchange blobs and pass barriers") {
  test::TempDir dir;
  const int port = free_tcp_port();
  auto rcs = run_ranks(3, dir.path.string(), [&](int rank) {
    TcpStore s("127.0.0.1", port, rank, 3, 20);
    // Binary blobs (NUL bytes, 128 bytes as an ncclUniqueId, and 300 KB).
    std::string id(128, '\0');
    for (int i = 0; i < 128; ++i) id[(size_t)i] = (char)(i * 37 + 11);
    if (rank == 0) s.set("nccl_id", id);
    if (s.get("nccl_id", 0) != id) return 10;
    std::string big(300000, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = (char)((i * (size_t)(rank + 3)) % 251);
    s.set("blob/" + std::to_string(rank), big);
    s.barrier("after set");
    for (int r = 0; r < 3; ++r) {
      std::string want(300000, '\0');
      for (size_t i = 0; i < want.size(); ++i) want[i] = (char)((i * (size_t)(r + 3)) % 251);
      if (!s.check("blob/" + std::to_string(r)) || s.get("blob/" + std::to_string(r), r) != want) return 11;
    }
    // Many barriers in a row (their keys are recycled), then one more exchange.
    for (int k = 0; k < 50; ++k) s.barrier("loop");
    s.set("last/" + std::to_string(rank), std::to_string(rank * 7));
    for (int r = 0; r < 3; ++r)
      if (s.get("last/" + std::to_string(r), r) != std::to_string(r * 7)) return 12;
    s.barrier("read");  // everyone has read every key before any is erased
    s.erase("last/" + std::to_string(rank));
    s.barrier("end");
    if (s.check("last/" + std::to_string(rank))) return 13;
    return 0;
  });
  for (int r = 0; r < 3; ++r) {
    CAPTURE(r);
    CHECK_MESSAGE(rcs[(size_t)r] == 0, slurp(dir.path.string() + "/rank" + std::to_string(r) + ".err"));
  }
}

TEST_CASE("TCP store: a rank that never arrives is named within the timeout") {
  test::TempDir dir;
  const int port = free_tcp_port();
  const auto t0 = std::chrono::steady_clock::now();
  // World 3, but rank 2 never starts: ranks 0 and 1 wait 2 s at the barrier.
  auto rcs = run_ranks(2, dir.path.string(), [&](int rank) {
    TcpStore s("127.0.0.1", port, rank, 3, 2);
    s.barrier("start");
    return 0;
  });
  const double took = seconds_since(t0);
  CHECK(took < 2 + 10);
  for (int r = 0; r < 2; ++r) {
    CHECK(rcs[(size_t)r] == 3);
    const std::string err = slurp(dir.path.string() + "/rank" + std::to_string(r) + ".err");
    CAPTURE(err);
    CHECK(err.find("rank(s) 2 did not arrive at barrier 'start' within dist.timeout_s = 2 s") != std::string::npos);
    CHECK(err.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  }
}

TEST_CASE("TCP store: without rank 0 the others stop at the deadline, saying where they tried") {
  test::TempDir dir;
  const int port = free_tcp_port();
  const auto t0 = std::chrono::steady_clock::now();
  auto rcs = run_ranks(1, dir.path.string(), [&](int) {
    TcpStore s("127.0.0.1", port, /*rank=*/1, 2, 1);
    return 0;
  });
  CHECK(seconds_since(t0) < 1 + 10);
  CHECK(rcs[0] == 3);
  const std::string err = slurp(dir.path.string() + "/rank0.err");  // (the child's index)
  CAPTURE(err);
  CHECK(err.find("rank 1 could not connect to the TCP store at 127.0.0.1:" + std::to_string(port) +
                 " within dist.timeout_s = 1 s") != std::string::npos);
  // A get that nobody answers names the key and the rank expected to set it.
  auto rcs2 = run_ranks(1, dir.path.string(), [&](int) {
    TcpStore s("127.0.0.1", port, 0, 2, 1);
    s.get("nccl_id", 1);
    return 0;
  });
  CHECK(rcs2[0] == 3);
  const std::string err2 = slurp(dir.path.string() + "/rank0.err");
  CAPTURE(err2);
  CHECK(err2.find("rank 1 did not set 'nccl_id' in the TCP store at 127.0.0.1:") != std::string::npos);
}
