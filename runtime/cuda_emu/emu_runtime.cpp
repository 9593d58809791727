// The CPU backend's runtime (PW_CUDA=EMU): the block scheduler on fibers, launch
// checks, the crash handler, and the memory / stream / event API. See emu.h.
// Streams run in order because everything runs at once, on the calling thread's
// launch: a stream or event wait has nothing left to wait for.
#include <boost/context/fiber.hpp>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "include/cuda_runtime.h"

namespace ctx = boost::context;

#if defined(EMU_TSAN_HOOKS)  // set when kernels are built with -fsanitize=thread
// ThreadSanitizer as a racecheck: every CUDA thread is a TSan fiber; context switches carry no
// happens-before; __syncthreads / warp rendezvous / kernel end are the only sync edges.
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#define EMU_TSAN 1
#define TSAN_SWITCH(f) __tsan_switch_to_fiber((f), 1 /* no sync */)
#define TSAN_RELEASE(a) __tsan_release(a)
#define TSAN_ACQUIRE(a) __tsan_acquire(a)
#else
#define EMU_TSAN 0
#define TSAN_SWITCH(f) (void)0
#define TSAN_RELEASE(a) (void)0
#define TSAN_ACQUIRE(a) (void)0
#endif

namespace emu {

namespace {

enum class St { Run, Bar, Warp, Done };

struct ThreadRec {
  Thread t;
  ctx::fiber fib;    // the suspended thread (while it is not running)
  ctx::fiber sched;  // the scheduler (while the thread runs)
  St st = St::Run;
  void* tsan = nullptr;
};

struct WarpState {
  int present = 0;  // lanes that exist in the block
  int exited = 0;
  int arrived = 0;
  unsigned mask = 0;
  uint64_t gen = 0;
  uint64_t slot[2][32];
};

struct BlockRun {
  Block blk;
  const char* name = "";
  int n = 0, live = 0, bar_arrived = 0;
  const char* bar_file = nullptr;  // the __syncthreads the waiting threads are at
  int bar_line = 0, bar_first = 0;
  int exited_first = -1;  // the first thread of the block that finished (names the culprit of a divergence)
  std::vector<ThreadRec> th;
  std::vector<WarpState> warps;
  unsigned char* smem = nullptr;
  void (*call)(void*) = nullptr;
  void* obj = nullptr;
  void* sched_tsan = nullptr;
  char bar_sync = 0, start_sync = 0, end_sync = 0;  // TSan sync objects
};

thread_local BlockRun* g_run = nullptr;
char g_launch_sync, g_done_sync;  // TSan sync objects: host -> kernel, kernel -> host

// ---- options (environment) ----
struct Options {
  int threads = 0;      // OS threads running blocks (EMU_THREADS); 0: hardware concurrency
  int sched = 0;  // EMU_SCHED: fwd / rev / rand passes over runnable threads; lo / hi: always the lowest /
                  // highest-numbered runnable thread next (lets one warp run as far ahead as it can)
  bool poison = true;   // EMU_POISON=0 disables NaN-filling of fresh device and shared memory
  size_t max_smem = 166912;  // EMU_MAX_SMEM: opt-in dynamic shared memory limit (sm_80: 163 KB)
  size_t stack = 64 * 1024;  // EMU_STACK: bytes of stack per CUDA thread
  static int parse_sched(const std::string& v) {
    return v == "rev" ? 1 : v == "rand" ? 2 : v == "lo" ? 3 : v == "hi" ? 4 : 0;
  }
  Options() {
    if (const char* s = getenv("EMU_THREADS")) threads = atoi(s);
    if (const char* s = getenv("EMU_SCHED")) sched = parse_sched(s);
    if (const char* s = getenv("EMU_POISON")) poison = atoi(s) != 0;
    if (const char* s = getenv("EMU_MAX_SMEM")) max_smem = strtoull(s, nullptr, 10);
    if (const char* s = getenv("EMU_STACK")) stack = (strtoull(s, nullptr, 10) + 4095) / 4096 * 4096;
    if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  }
};
Options& opts() {
  static Options o;
  return o;
}

// ---- stacks: a per-OS-thread pool of mmap'ed stacks with a guard page ----
struct StackPool {
  std::vector<void*> free_, all_;  // all_: every stack of this OS thread (the crash handler's guard-page test)
  ~StackPool() {
    for (void* p : free_) munmap(p, opts().stack + 4096);
  }
  void* get() {
    if (!free_.empty()) {
      void* p = free_.back();
      free_.pop_back();
      return p;
    }
    void* p = mmap(nullptr, opts().stack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fatal("mmap of a fiber stack failed");
    mprotect(p, 4096, PROT_NONE);  // guard page below the stack
    all_.push_back(p);
    return p;
  }
  void put(void* p) { free_.push_back(p); }
};
thread_local StackPool g_stacks;

struct PoolStack {
  ctx::stack_context allocate() {
    ctx::stack_context sc;
    char* base = (char*)g_stacks.get();
    sc.size = opts().stack;
    sc.sp = base + 4096 + opts().stack;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept { g_stacks.put((char*)sc.sp - opts().stack - 4096); }
};

thread_local std::vector<unsigned char> g_smem_buf;

void yield(ThreadRec& tr) {
  TSAN_SWITCH(g_run->sched_tsan);
  tr.sched = std::move(tr.sched).resume();
}

void on_exit(BlockRun& R, ThreadRec& tr) {
  --R.live;
  if (R.exited_first < 0) R.exited_first = tr.t.linear;
  WarpState& w = R.warps[tr.t.warp];
  ++w.exited;
  if (w.arrived > 0 && (w.mask >> tr.t.lane & 1u))
    fatal("kernel %s block (%u,%u,%u): lane %d of warp %d exited while %d lanes wait in a warp-synchronous call "
          "(__shfl_*_sync / __syncwarp / wmma) whose mask includes it",
          R.name, R.blk.bid.x, R.blk.bid.y, R.blk.bid.z, tr.t.lane, tr.t.warp, w.arrived);
  if (R.bar_arrived > 0 && R.bar_arrived == R.live)
    fatal("barrier divergence: this thread finished while %d threads of its block wait at the __syncthreads at %s:%d "
          "(%d of the block's %d threads have exited)",
          R.bar_arrived, R.bar_file, R.bar_line, R.n - R.live, R.n);
}

void run_block(BlockRun& R, std::mt19937* rng) {
  g_run = &R;
  TSAN_RELEASE(&R.start_sync);  // the Thread records and earlier blocks -> this block's threads
  const int n = R.n;
  for (int i = 0; i < n; ++i) {
    ThreadRec& tr = R.th[i];
    tr.st = St::Run;
    tr.fib = ctx::fiber(std::allocator_arg, PoolStack{}, [&R, i](ctx::fiber&& s) {
      ThreadRec& me = R.th[i];
      me.sched = std::move(s);
      TSAN_ACQUIRE(&g_launch_sync);  // the host's writes before the launch
      TSAN_ACQUIRE(&R.start_sync);   // the scheduler: earlier blocks on this OS thread (shared storage reuse)
      try {
        R.call(R.obj);
      } catch (const std::exception& e) {
        fatal("an exception left the kernel: %s", e.what());
      } catch (...) {
        fatal("an exception left the kernel");
      }
      me.st = St::Done;
      TSAN_RELEASE(&g_done_sync);  // kernel end -> host
      TSAN_RELEASE(&R.end_sync);   // block end -> the scheduler (never to the block's other threads)
      TSAN_SWITCH(R.sched_tsan);
      return std::move(me.sched);
    });
#if EMU_TSAN
    static thread_local std::vector<void*> tsan_fibers;  // reused: TSan fiber creation is slow
    while ((int)tsan_fibers.size() <= i) tsan_fibers.push_back(__tsan_create_fiber(0));
    tr.tsan = tsan_fibers[i];
#endif
  }
  std::vector<int> order(n);
  const bool rev = opts().sched == 1 || opts().sched == 4, greedy = opts().sched >= 3;
  for (int i = 0; i < n; ++i) order[i] = rev ? n - 1 - i : i;
  while (R.live > 0) {
    if (rng) std::shuffle(order.begin(), order.end(), *rng);
    bool progressed = false;
    for (int k = 0; k < n; ++k) {
      ThreadRec& tr = R.th[order[k]];
      if (tr.st != St::Run) continue;
      cur = &tr.t;
      TSAN_SWITCH(tr.tsan);
      tr.fib = std::move(tr.fib).resume();
      progressed = true;
      if (tr.st == St::Done) on_exit(R, tr);
      if (greedy) k = -1;  // rescan from the first thread
    }
    if (!progressed) {
      int bar = 0, warp = 0;
      for (auto& t : R.th) bar += t.st == St::Bar, warp += t.st == St::Warp;
      fatal("kernel %s block (%u,%u,%u): deadlock: %d threads wait at __syncthreads, %d in warp-synchronous calls, "
            "%d exited",
            R.name, R.blk.bid.x, R.blk.bid.y, R.blk.bid.z, bar, warp, R.n - R.live);
    }
  }
  TSAN_ACQUIRE(&R.end_sync);  // the scheduler reuses what the threads touched (records, shared storage)
  cur = nullptr;
  g_run = nullptr;
}

// ---- the crash handler: a fault inside a kernel names the kernel, block and thread ----
struct sigaction g_old_action[32];
const int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

void crash_handler(int sig, siginfo_t* si, void* uc) {
  if (cur && g_run) {
    const BlockRun& R = *g_run;
    const char* what = sig == SIGSEGV ? "SIGSEGV (invalid memory access)"
                       : sig == SIGBUS ? "SIGBUS (misaligned or invalid access)"
                       : sig == SIGFPE ? "SIGFPE (arithmetic fault, e.g. integer division by zero)"
                                       : "SIGILL";
    bool guard = false;
    for (void* p : g_stacks.all_)
      if ((char*)si->si_addr >= (char*)p && (char*)si->si_addr < (char*)p + 4096) guard = true;
    char buf[768];
    const int n = std::snprintf(buf, sizeof buf,
                                "cuda-emu: %s at address %p in kernel %s, block (%u,%u,%u), thread (%u,%u,%u)%s\n", what,
                                si->si_addr, R.name, R.blk.bid.x, R.blk.bid.y, R.blk.bid.z, cur->tid.x, cur->tid.y,
                                cur->tid.z,
                                guard ? ": the CUDA thread overflowed its fiber stack (raise EMU_STACK, in bytes)" : "");
    if (n > 0) (void)!write(2, buf, std::min<size_t>((size_t)n, sizeof buf - 1));
  }
  // Hand the signal on: the previous handler, or the default action when the fault repeats.
  sigaction(sig, &g_old_action[sig], nullptr);
  if (g_old_action[sig].sa_flags & SA_SIGINFO) {
    if (g_old_action[sig].sa_sigaction) g_old_action[sig].sa_sigaction(sig, si, uc);
  } else if (g_old_action[sig].sa_handler != SIG_DFL && g_old_action[sig].sa_handler != SIG_IGN) {
    g_old_action[sig].sa_handler(sig);
  }
}

// At every launch: the handler, put back in front when someone (a test framework)
// has installed another since, which is then called after it. Once per OS thread
// running blocks: an alternate signal stack, so that a fiber's stack overflow can
// still be reported.
void install_crash_handler() {
  static const bool off = getenv("EMU_NO_CRASH_HANDLER") != nullptr;
  if (off) return;
  static std::mutex mu;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (int sig : kCrashSignals) {
      struct sigaction now {};
      sigaction(sig, nullptr, &now);
      if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == crash_handler) continue;
      struct sigaction sa {};
      sa.sa_sigaction = crash_handler;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, &g_old_action[sig]);
    }
  }
  // The signal stack of this thread, for its life: unregistered and freed at thread
  // exit (held in thread-local storage, so LeakSanitizer sees it as reachable until then).
  struct AltStack {
    std::unique_ptr<char[]> mem;
    ~AltStack() {
      if (!mem) return;
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      sigaltstack(&off, nullptr);
    }
  };
  thread_local AltStack alt;
  if (!alt.mem) {
    stack_t ss{};
    ss.ss_size = 64 * 1024;
    alt.mem.reset(new char[ss.ss_size]);
    ss.ss_sp = alt.mem.get();
    sigaltstack(&ss, nullptr);
  }
}

// ---- launch bookkeeping ----
std::mutex g_mu;
std::unordered_map<const void*, int> g_max_dyn_smem;  // kernel -> cudaFuncAttributeMaxDynamicSharedMemorySize
thread_local cudaError_t g_last_error = cudaSuccess;
std::atomic<long> g_launches{0}, g_unchecked_smem{0};

}  // namespace

void set_schedule(const char* order) { opts().sched = Options::parse_sched(order); }

[[noreturn]] void fatal(const char* fmt, ...) {
  std::fflush(stdout);
  std::fprintf(stderr, "cuda-emu: ERROR: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (cur && g_run)
    std::fprintf(stderr, " [in kernel %s, block (%u,%u,%u), thread (%u,%u,%u)]", g_run->name, g_run->blk.bid.x,
                 g_run->blk.bid.y, g_run->blk.bid.z, cur->tid.x, cur->tid.y, cur->tid.z);
  std::fprintf(stderr, "\n");
  std::abort();
}

void syncthreads(const char* file, int line) {
  BlockRun& R = *g_run;
  ThreadRec& tr = R.th[cur->linear];
  if (R.bar_arrived == 0) {
    R.bar_file = file, R.bar_line = line, R.bar_first = cur->linear;
  } else if (line != R.bar_line || std::strcmp(file, R.bar_file) != 0) {
    const Thread& f = R.th[R.bar_first].t;
    fatal("barrier divergence: this thread reached the __syncthreads at %s:%d while %d threads of its block, thread "
          "(%u,%u,%u) first, wait at the one at %s:%d",
          file, line, R.bar_arrived, f.tid.x, f.tid.y, f.tid.z, R.bar_file, R.bar_line);
  }
  TSAN_RELEASE(&R.bar_sync);
  if (++R.bar_arrived == R.live) {
    if (R.live != R.n) {
      const Thread& x = R.th[R.exited_first].t;
      fatal("barrier divergence: __syncthreads at %s:%d reached by %d threads while %d of the block's %d threads have "
            "exited without reaching it, thread (%u,%u,%u) first",
            file, line, R.bar_arrived, R.n - R.live, R.n, x.tid.x, x.tid.y, x.tid.z);
    }
    R.bar_arrived = 0;
    for (auto& t : R.th)
      if (t.st == St::Bar) t.st = St::Run;
    TSAN_ACQUIRE(&R.bar_sync);
    return;
  }
  tr.st = St::Bar;
  yield(tr);
  TSAN_ACQUIRE(&R.bar_sync);
}

const uint64_t* warp_collect(unsigned mask, uint64_t v) {
  BlockRun& R = *g_run;
  ThreadRec& tr = R.th[cur->linear];
  WarpState& w = R.warps[cur->warp];
  const int lane = cur->lane;
  const unsigned present = w.present == 32 ? 0xffffffffu : ((1u << w.present) - 1u);
  if (!(mask >> lane & 1u))
    fatal("warp-synchronous call with mask 0x%08x by lane %d, which is not in the mask", mask, lane);
  if (mask & ~present)
    fatal("warp-synchronous call with mask 0x%08x names lanes that do not exist (warp has %d lanes)", mask, w.present);
  if (w.arrived == 0) w.mask = mask;
  else if (w.mask != mask)
    fatal("lanes of one warp disagree on the mask of a warp-synchronous call: 0x%08x vs 0x%08x", w.mask, mask);
  const uint64_t my_gen = w.gen;
  w.slot[my_gen & 1][lane] = v;
  TSAN_RELEASE(&w);
  if (++w.arrived == __builtin_popcount(mask)) {
    w.arrived = 0;
    ++w.gen;
    for (int l = 0; l < w.present; ++l) {
      ThreadRec& t = R.th[cur->warp * 32 + l];
      if (t.st == St::Warp) t.st = St::Run;
    }
  } else {
    tr.st = St::Warp;
    yield(tr);
  }
  TSAN_ACQUIRE(&w);
  // Valid until this lane's next collective: the slots of generation gen + 2 reuse
  // this half, and no lane gets there before every lane of gen + 1 has arrived.
  return w.slot[my_gen & 1];
}

void syncwarp(unsigned mask) {
  const WarpState& w = g_run->warps[cur->warp];
  const unsigned present = w.present == 32 ? 0xffffffffu : ((1u << w.present) - 1u);
  warp_collect(mask & present, 0);
}

void* dynamic_smem() { return g_run->smem; }

namespace {
// Persistent worker threads (their stack pools and shared-memory buffers survive launches).
struct Pool {
  std::mutex m;
  std::condition_variable cv, done_cv;
  std::vector<std::thread> ts;
  const std::function<void(int)>* job = nullptr;
  int njob = 0, pending = 0;
  uint64_t epoch = 0;
  explicit Pool(int n) {
    for (int w = 1; w < n; ++w)
      ts.emplace_back([this, w] {
        uint64_t seen = 0;
        for (;;) {
          std::unique_lock<std::mutex> l(m);
          cv.wait(l, [&] { return epoch != seen; });
          seen = epoch;
          if (w >= njob) continue;
          const auto* j = job;
          l.unlock();
          (*j)(w);
          l.lock();
          if (--pending == 0) done_cv.notify_all();
        }
      });
    for (auto& t : ts) t.detach();
  }
  std::mutex run_mu;
  void run(int n, const std::function<void(int)>& f) {
    std::lock_guard<std::mutex> serial(run_mu);
    {
      std::lock_guard<std::mutex> l(m);
      job = &f;
      njob = n;
      pending = n - 1;
      ++epoch;
    }
    cv.notify_all();
    f(0);
    std::unique_lock<std::mutex> l(m);
    done_cv.wait(l, [&] { return pending == 0; });
  }
};
Pool* g_pool = nullptr;
Pool& pool() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A forked child (the emulator's own death tests) has none of the parent's
    // workers: it starts a pool of its own (the parent's is leaked there).
    pthread_atfork(nullptr, nullptr, [] { g_pool = nullptr; });
  });
  if (!g_pool) g_pool = new Pool(opts().threads);
  return *g_pool;
}
}  // namespace

namespace {
// EMU_KERNEL_LOG=file: at exit, append "name count" per kernel launched (docs/cuda.md's
// table of what ran where is made from these).
struct KernelLog {
  std::mutex mu;
  std::map<std::string, long> n;
  void dump() {
    std::lock_guard<std::mutex> lock(mu);
    const char* path = getenv("EMU_KERNEL_LOG");
    if (!path || n.empty()) return;
    if (FILE* f = std::fopen(path, "a")) {
      for (const auto& [k, c] : n) std::fprintf(f, "%s %ld\n", k.c_str(), c);
      std::fclose(f);
    }
    n.clear();
  }
};
KernelLog* kernel_log() {
  static KernelLog* log = getenv("EMU_KERNEL_LOG") ? new KernelLog : nullptr;
  static const bool registered = log && std::atexit([] { kernel_log()->dump(); }) == 0;
  (void)registered;
  return log;
}
}  // namespace

void log_call(const char* name) {
  if (KernelLog* log = kernel_log()) {
    std::lock_guard<std::mutex> lock(log->mu);
    ++log->n[name];
  }
}

void launch_erased(const LaunchCfg& cfg, const void* kernel, const char* name, void (*call)(void*), void* obj) {
  ++g_launches;
  log_call(name);
  const dim3 g = cfg.grid, b = cfg.block;
  const uint64_t nthreads = (uint64_t)b.x * b.y * b.z;
  if (nthreads == 0 || nthreads > 1024 || b.x > 1024 || b.y > 1024 || b.z > 64 || g.x == 0 || g.y == 0 || g.z == 0 ||
      g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) {
    std::fprintf(stderr, "cuda-emu: launch of %s with grid (%u,%u,%u) block (%u,%u,%u): invalid configuration\n", name,
                 g.x, g.y, g.z, b.x, b.y, b.z);
    g_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (cfg.smem > 48 * 1024) {
    if (!kernel) {
      ++g_unchecked_smem;
    } else {
      std::lock_guard<std::mutex> lock(g_mu);
      auto it = g_max_dyn_smem.find(kernel);
      if (it == g_max_dyn_smem.end() || (size_t)it->second < cfg.smem) {
        std::fprintf(stderr,
                     "cuda-emu: launch of %s with %zu bytes of dynamic shared memory: over 48 KB without "
                     "cudaFuncSetAttribute(MaxDynamicSharedMemorySize) >= that\n",
                     name, cfg.smem);
        g_last_error = cudaErrorInvalidValue;
        return;
      }
    }
  }
  if (cfg.smem > opts().max_smem) {
    std::fprintf(stderr, "cuda-emu: launch of %s with %zu bytes of dynamic shared memory: over the device's %zu\n",
                 name, cfg.smem, opts().max_smem);
    g_last_error = cudaErrorInvalidValue;
    return;
  }
  const int64_t nblocks = (int64_t)g.x * g.y * g.z;
  const int nt = (int)std::min<int64_t>(opts().threads, nblocks);
  if (cur) fatal("launch of %s from inside a kernel (dynamic parallelism is not supported)", name);
  auto worker = [&](int wid) {
    install_crash_handler();
    BlockRun R;
    R.name = name;
    R.n = (int)nthreads;
    R.th.resize(R.n);
    R.warps.resize((R.n + 31) / 32);
    R.call = call;
    R.obj = obj;
    R.blk.bdim = b;
    R.blk.gdim = g;
    if (g_smem_buf.size() < cfg.smem + 128) g_smem_buf.resize(cfg.smem + 128);
    R.smem = (unsigned char*)(((uintptr_t)g_smem_buf.data() + 127) & ~(uintptr_t)127);
    std::mt19937 rng(1234 + wid);
#if EMU_TSAN
    R.sched_tsan = __tsan_get_current_fiber();
#endif
    for (int64_t blk = wid; blk < nblocks; blk += nt) {
      R.blk.bid = {(unsigned)(blk % g.x), (unsigned)(blk / g.x % g.y), (unsigned)(blk / ((int64_t)g.x * g.y))};
      R.live = R.n;
      R.bar_arrived = 0;
      R.exited_first = -1;
      for (int w = 0; w < (int)R.warps.size(); ++w) {
        R.warps[w] = WarpState{};
        R.warps[w].present = std::min(32, R.n - 32 * w);
      }
      for (int i = 0; i < R.n; ++i) {
        Thread& t = R.th[i].t;
        t.tid = {(unsigned)(i % b.x), (unsigned)(i / b.x % b.y), (unsigned)(i / (b.x * b.y))};
        t.block = &R.blk;
        t.linear = i;
        t.lane = i % 32;
        t.warp = i / 32;
      }
      if (opts().poison && cfg.smem) std::memset(R.smem, 0xff, cfg.smem);
      run_block(R, opts().sched == 2 ? &rng : nullptr);
    }
  };
  TSAN_RELEASE(&g_launch_sync);
  if (nt <= 1) worker(0);
  else pool().run(nt, worker);
  TSAN_ACQUIRE(&g_done_sync);
}

// ---- device memory registry ----
namespace {
std::map<uintptr_t, size_t> g_dev;  // base -> bytes
std::map<uintptr_t, size_t> g_pinned;
// The allocation holding [p, p + n), or false.
bool in_device(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(g_mu);
  const uintptr_t a = (uintptr_t)p;
  auto it = g_dev.upper_bound(a);
  if (it == g_dev.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}
bool any_device(const void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  const uintptr_t a = (uintptr_t)p;
  auto it = g_dev.upper_bound(a);
  if (it == g_dev.begin()) return false;
  --it;
  return a < it->first + it->second;
}
cudaError_t set_err(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;
  return e;
}
cudaError_t check_copy(void* dst, const void* src, size_t n, cudaMemcpyKind k) {
  const bool dd = in_device(dst, n), sd = in_device(src, n);
  const bool dany = any_device(dst), sany = any_device(src);
  bool ok = true;
  switch (k) {
    case cudaMemcpyHostToDevice: ok = dd && !sany; break;
    case cudaMemcpyDeviceToHost: ok = sd && !dany; break;
    case cudaMemcpyDeviceToDevice: ok = dd && sd; break;
    case cudaMemcpyHostToHost: ok = !dany && !sany; break;
    case cudaMemcpyDefault: ok = (dd || !dany) && (sd || !sany); break;
  }
  if (!ok) {
    std::fprintf(stderr, "cuda-emu: cudaMemcpy(%p, %p, %zu, kind %d): pointers do not match the kind or the range "
                 "leaves its allocation\n", dst, src, n, (int)k);
    return set_err(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
}  // namespace

bool is_device_range(const void* p, size_t n) { return in_device(p, n); }

}  // namespace emu

using namespace emu;

struct emu_stream {
  unsigned flags;
};
struct emu_event {
  std::chrono::steady_clock::time_point t;
};

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unknown error";
  }
}
cudaError_t cudaGetLastError() {
  cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }
cudaError_t cudaGetDeviceCount(int* n) {
  if (getenv("EMU_NO_DEVICE")) {
    *n = 0;
    return set_err(cudaErrorNoDevice);
  }
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : set_err(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new emu_stream{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void** p, size_t bytes) {
  void* q = nullptr;
  if (posix_memalign(&q, 256, bytes ? bytes : 1) != 0) return set_err(cudaErrorMemoryAllocation);
  if (opts().poison) std::memset(q, 0xff, bytes);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_dev[(uintptr_t)q] = bytes ? bytes : 1;
  }
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_dev.find((uintptr_t)p);
  if (it == g_dev.end()) return set_err(cudaErrorInvalidDevicePointer);
  g_dev.erase(it);
#if !EMU_TSAN  // under TSan, freed device memory is never reused (no false reports on reuse)
  std::free(p);
#endif
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::malloc(bytes ? bytes : 1);
  std::lock_guard<std::mutex> lock(g_mu);
  g_pinned[(uintptr_t)*p] = bytes;
  return *p ? cudaSuccess : set_err(cudaErrorMemoryAllocation);
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
cudaError_t cudaFreeHost(void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_pinned.erase((uintptr_t)p) == 0) return set_err(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind k) {
  if (n == 0) return cudaSuccess;
  if (cudaError_t e = check_copy(dst, src, n, k)) return e;
  std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, n, k);
}
cudaError_t cudaMemset(void* p, int v, size_t n) {
  if (n == 0) return cudaSuccess;
  if (!in_device(p, n)) {
    std::fprintf(stderr, "cuda-emu: cudaMemset(%p, %d, %zu): not inside one device allocation\n", p, v, n);
    return set_err(cudaErrorInvalidValue);
  }
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { return cudaMemset(p, v, n); }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new emu_event{};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t emu_func_set_attribute(const void* f, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return set_err(cudaErrorInvalidValue);
  if (value < 0 || (size_t)value > opts().max_smem) {
    std::fprintf(stderr, "cuda-emu: cudaFuncSetAttribute(MaxDynamicSharedMemorySize, %d): over the device's %zu\n",
                 value, opts().max_smem);
    return set_err(cudaErrorInvalidValue);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_max_dyn_smem[f] = value;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
