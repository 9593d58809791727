#include "dist/tcp_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>
#include <thread>

#include "runtime/check.h"

namespace pw::dist {

namespace {

using Clock = std::chrono::steady_clock;

// Wire format. Request: op (1 byte: 'S' set, 'G' get-if-set, 'D' delete), key length and
// value length (u32 each, little-endian as the hosts are), key, value. Reply: status (1
// byte: 1 found / done, 0 not found), value length (u32), value.
constexpr size_t kHeader = 9;

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}
bool read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}
void put_u32(std::string& s, uint32_t v) { s.append((const char*)&v, 4); }
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
std::string reply(char status, const std::string& value) {
  std::string r(1, status);
  put_u32(r, (uint32_t)value.size());
  return r + value;
}
void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

// Rank 0's server: one thread, poll() over the listening socket and the clients, each
// client's bytes buffered until a whole request is in. Only this thread touches `kv`.
struct TcpStore::Server {
  int listen_fd = -1, wake[2] = {-1, -1};
  std::thread thread;
  std::atomic<bool> stop{false};
  std::atomic<int> clients{0};
  std::map<std::string, std::string> kv;

  Server(int port) {
    listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    PW_CHECK(listen_fd >= 0, "TCP store: socket() failed: ", std::strerror(errno));
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    if (::bind(listen_fd, (sockaddr*)&a, sizeof a) != 0 || ::listen(listen_fd, 1024) != 0) {
      const std::string err = std::strerror(errno);
      ::close(listen_fd);
      PW_FAIL("rank 0 could not serve the TCP store on port ", port, " (MASTER_PORT): ", err,
              "; another job may be using the port: pick another MASTER_PORT for every rank");
    }
    PW_CHECK(::pipe(wake) == 0, "TCP store: pipe() failed: ", std::strerror(errno));
    thread = std::thread([this] { loop(); });
  }
  ~Server() {
    stop = true;
    char c = 0;
    if (::write(wake[1], &c, 1) < 0) {}
    if (thread.joinable()) thread.join();
    ::close(listen_fd);
    ::close(wake[0]);
    ::close(wake[1]);
  }

  void loop() {
    std::vector<int> fds;
    std::map<int, std::string> in;  // per client: bytes not yet a whole request
    while (!stop) {
      std::vector<pollfd> p{{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      for (int fd : fds) p.push_back({fd, POLLIN, 0});
      if (::poll(p.data(), p.size(), 1000) < 0 && errno != EINTR) break;
      if (p[1].revents) break;
      if (p[0].revents & POLLIN) {
        int c = ::accept(listen_fd, nullptr, nullptr);
        if (c >= 0) {
          no_delay(c);
          fds.push_back(c);
          in[c];
          ++clients;
        }
      }
      for (size_t i = 2; i < p.size(); ++i) {
        if (!p[i].revents) continue;
        const int fd = p[i].fd;
        char buf[65536];
        ssize_t k = ::recv(fd, buf, sizeof buf, 0);
        bool ok = k > 0;
        if (ok) {
          std::string& b = in[fd];
          b.append(buf, (size_t)k);
          ok = serve(fd, b);
        } else if (k < 0 && (errno == EINTR || errno == EAGAIN)) {
          continue;
        }
        if (!ok) {  // the client left (or sent garbage)
          ::close(fd);
          in.erase(fd);
          fds.erase(std::find(fds.begin(), fds.end(), fd));
          --clients;
        }
      }
    }
    for (int fd : fds) ::close(fd);
    clients = 0;
  }

  // Answers every whole request in b (then drops it from b); false: drop the client.
  bool serve(int fd, std::string& b) {
    size_t at = 0;
    while (b.size() - at >= kHeader) {
      const char op = b[at];
      const uint32_t kl = get_u32(&b[at + 1]), vl = get_u32(&b[at + 5]);
      if (b.size() - at < kHeader + kl + vl) break;
      std::string key = b.substr(at + kHeader, kl), value = b.substr(at + kHeader + kl, vl);
      at += kHeader + kl + vl;
      std::string r;
      if (op == 'S') {
        kv[key] = std::move(value);
        r = reply(1, "");
      } else if (op == 'G') {
        auto it = kv.find(key);
        r = it == kv.end() ? reply(0, "") : reply(1, it->second);
      } else if (op == 'D') {
        kv.erase(key);
        r = reply(1, "");
      } else {
        return false;
      }
      if (!write_all(fd, r.data(), r.size())) return false;
    }
    b.erase(0, at);
    return true;
  }
};

TcpStore::TcpStore(const std::string& addr, int port, int rank, int world, double timeout)
    : timeout_s(timeout), addr_(addr), port_(port), rank_(rank), world_(world) {
  PW_CHECK(!addr.empty() && port > 0 && port < 65536, "rank ", rank,
           ": a launch without MPI needs MASTER_ADDR and MASTER_PORT (1..65535) for the TCP store, got '", addr, "' and ",
           port, "; torchrun sets them, or export them on every rank");
  if (rank == 0) server_ = std::make_unique<Server>(port);
  // Connect, retrying until the deadline (rank 0 may start later than the others).
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  std::string last = "no attempt";
  for (;;) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    const int gai = ::getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (gai != 0) {
      last = std::string("cannot resolve '") + addr + "': " + gai_strerror(gai);
    } else {
      for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          fd_ = fd;
        } else {
          last = std::strerror(errno);
          ::close(fd);
        }
      }
      ::freeaddrinfo(res);
    }
    if (fd_ >= 0) break;
    if (Clock::now() > deadline)
      PW_FAIL("rank ", rank, " could not connect to the TCP store at ", where(), " within dist.timeout_s = ", timeout_s,
              " s (", last, "); rank 0 serves it: is rank 0 running, and are MASTER_ADDR/MASTER_PORT the same on "
              "every rank?");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  no_delay(fd_);
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
  if (server_) {
    // Serve the others until they have left (their own stores destroyed), within the deadline.
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (server_->clients > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string TcpStore::where() const { return addr_ + ":" + std::to_string(port_); }

void TcpStore::lost(const std::string& what) const {
  PW_FAIL("rank ", rank_, " lost the connection to the TCP store at ", where(), " (rank 0 serves it) in ", what,
          ": rank 0 stopped, or the network failed");
}

std::string TcpStore::request(char op, const std::string& key, const std::string& value) {
  std::string m(1, op);
  put_u32(m, (uint32_t)key.size());
  put_u32(m, (uint32_t)value.size());
  m += key;
  m += value;
  const std::string what = std::string(op == 'S' ? "set" : op == 'G' ? "get" : "delete") + " '" + key + "'";
  if (!write_all(fd_, m.data(), m.size())) lost(what);
  char h[5];
  if (!read_all(fd_, h, 5)) lost(what);
  std::string v(get_u32(h + 1), '\0');
  if (!v.empty() && !read_all(fd_, &v[0], v.size())) lost(what);
  return h[0] ? std::string(1, '\1') + v : std::string();  // "" = not found
}

void TcpStore::set(const std::string& key, const std::string& value) { request('S', key, value); }
void TcpStore::erase(const std::string& key) { request('D', key, ""); }
bool TcpStore::check(const std::string& key) { return !request('G', key, "").empty(); }

std::string TcpStore::get(const std::string& key, int who) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::microseconds(100);
  for (;;) {
    std::string r = request('G', key, "");
    if (!r.empty()) return r.substr(1);
    if (Clock::now() > deadline) {
      std::ostringstream os;
      os << "rank " << rank_ << ": " << (who >= 0 ? "rank " + std::to_string(who) : std::string("no rank"))
         << " did not set '" << key << "' in the TCP store at " << where() << " within dist.timeout_s = " << timeout_s
         << " s; a rank died, hangs or never started";
      PW_FAIL(os.str());
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(10000));
  }
}

void TcpStore::barrier(const std::string& name) {
  const int64_t b = barriers_++;
  auto key = [&](int64_t n, int r) { return "barrier/" + std::to_string(n) + "/" + std::to_string(r); };
  set(key(b, rank_), name);
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::microseconds(100);
  for (int r = 0; r < world_;) {
    std::string v = request('G', key(b, r), "");
    if (!v.empty()) {
      PW_CHECK(v.substr(1) == name, "rank ", rank_, " is at barrier '", name, "' (number ", b, ") but rank ", r,
               " is at '", v.substr(1), "'; the ranks are out of step");
      ++r;
      continue;
    }
    if (Clock::now() > deadline) {
      std::string missing;
      for (int q = r; q < world_; ++q)
        if (!check(key(b, q))) missing += (missing.empty() ? "" : ", ") + std::to_string(q);
      PW_FAIL("rank(s) ", missing, " did not arrive at barrier '", name, "' within dist.timeout_s = ", timeout_s,
              " s (TCP store at ", where(), ", rank ", rank_, " waiting); a rank died, hangs or never started");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(10000));
  }
  // Every rank has set its key of barrier b, so every rank is past barrier b - 1: this
  // rank's key of b - 2 is no longer read by anyone.
  if (b >= 2) erase(key(b - 2, rank_));
}

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  PW_CHECK(fd >= 0, "free_tcp_port: socket() failed: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  PW_CHECK(::bind(fd, (sockaddr*)&a, sizeof a) == 0 && ::getsockname(fd, (sockaddr*)&a, &len) == 0,
           "free_tcp_port: ", std::strerror(errno));
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace pw::dist
