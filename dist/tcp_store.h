// A small key-value store over TCP for launches without MPI (torchrun-style: RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as torch.distributed's TCPStore:
// rank 0 serves it on MASTER_PORT (all interfaces), every rank (rank 0 too) connects to
// MASTER_ADDR:MASTER_PORT, retrying until the deadline. It exchanges NCCL's unique id
// and carries the small host collectives (dist/store_group.cpp).
//
// Values are byte blobs. get() waits (polling) until the key is set; barrier() waits
// until every rank has arrived. Nothing waits without a deadline (`timeout_s`,
// dist.timeout_s); errors name the address and port and the rank(s) that did not
// arrive. The server lives on rank 0 (a thread) and, when rank 0's store is destroyed,
// stays up until the other ranks have disconnected (or the deadline passes).
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace pw::dist {

class TcpStore {
 public:
  TcpStore(const std::string& addr, int port, int rank, int world, double timeout_s);
  ~TcpStore();
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  void set(const std::string& key, const std::string& value);
  // Waits until `key` is set; past the deadline throws, naming the key and `who` (the
  // rank expected to set it, -1: unknown).
  std::string get(const std::string& key, int who = -1);
  bool check(const std::string& key);  // set yet? (does not wait)
  void erase(const std::string& key);
  // Every rank calls barrier(name) with the same names in the same order; past the
  // deadline throws, naming the ranks that did not arrive.
  void barrier(const std::string& name);

  int rank() const { return rank_; }
  int world() const { return world_; }
  std::string where() const;  // "127.0.0.1:29500"
  double timeout_s;

 private:
  struct Server;
  std::string request(char op, const std::string& key, const std::string& value);
  [[noreturn]] void lost(const std::string& what) const;
  std::string addr_;
  int port_, rank_, world_;
  int fd_ = -1;
  int64_t barriers_ = 0;
  std::unique_ptr<Server> server_;  // rank 0
};

// A free TCP port on 127.0.0.1 (tests): bound, read back, closed.
int free_tcp_port();

}  // namespace pw::dist
