// libFuzzer target: pw::fuzz::image (tests/fuzz/targets.h says what it checks).
// stb_image is compiled into data/image_folder.cpp (third_party/stb), so it is
// instrumented and fuzzed with the rest.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pw::fuzz::image(data, size);
  return 0;
}
