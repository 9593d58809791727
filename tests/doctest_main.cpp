// The main of every test suite: doctest's, plus honest skips (tests/skip.h).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/skip.h"

int main(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  if (ctx.shouldExit() || rc != 0) return rc;
  if (const int n = pw::test::skipped_cases()) {
    std::printf("%d test case(s) skipped; the suite is reported as skipped, not passed\n", n);
    return pw::test::kSkipReturnCode;
  }
  return 0;
}
