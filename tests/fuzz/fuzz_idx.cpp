// libFuzzer target: pw::fuzz::idx (tests/fuzz/targets.h says what it checks).
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pw::fuzz::idx(data, size);
  return 0;
}
