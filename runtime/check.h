// PW_CHECK: the one way patchwork reports a broken precondition.
// A failed check throws pw::Error whose message starts with "file:line: " and
// carries whatever the caller streamed in (op name, shapes, the fix).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pw {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void stream_all(std::ostringstream&) {}
template <class A, class... R>
void stream_all(std::ostringstream& os, const A& a, const R&... r) {
  os << a;
  stream_all(os, r...);
}
template <class... A>
[[noreturn]] void fail(const char* file, int line, const A&... a) {
  std::ostringstream os;
  os << file << ":" << line << ": ";
  stream_all(os, a...);
  throw Error(os.str());
}
}  // namespace detail

}  // namespace pw

#define PW_CHECK(cond, ...)                                      \
  do {                                                           \
    if (!(cond)) ::pw::detail::fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

#define PW_FAIL(...) ::pw::detail::fail(__FILE__, __LINE__, __VA_ARGS__)
