#include "data/check.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace pw {

std::vector<BadSample> check_dataset(const Dataset& ds, int threads, const std::function<void(int64_t)>& progress) {
  const int64_t n = ds.size();
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  threads = (int)std::min<int64_t>(threads, std::max<int64_t>(n, 1));
  std::atomic<int64_t> next{0}, done{0};
  std::mutex mu;
  std::vector<BadSample> bad;
  auto work = [&](bool reporter) {
    const int64_t chunk = 64;
    for (;;) {
      const int64_t first = next.fetch_add(chunk);
      if (first >= n) return;
      for (int64_t i = first; i < std::min(n, first + chunk); ++i) {
        try {
          (void)ds.get(i);
        } catch (const BadSampleError& e) {
          std::lock_guard<std::mutex> lk(mu);
          bad.push_back({i, e.path, e.reason});
        } catch (const Error& e) {
          std::lock_guard<std::mutex> lk(mu);
          bad.push_back({i, "sample " + std::to_string(i), e.what()});
        }
      }
      const int64_t d = done.fetch_add(std::min(n, first + chunk) - first) + std::min(n, first + chunk) - first;
      if (reporter && progress) progress(d);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, false);
  work(true);
  for (auto& t : pool) t.join();
  std::sort(bad.begin(), bad.end(), [](const BadSample& a, const BadSample& b) { return a.index < b.index; });
  return bad;
}

}  // namespace pw
