// libFuzzer target: pw::fuzz::wav (tests/fuzz/targets.h says what it checks).
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pw::fuzz::wav(data, size);
  return 0;
}
