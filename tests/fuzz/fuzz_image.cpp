// libFuzzer target: pw::fuzz::image (tests/fuzz/targets.h says what it checks).
//
// stb_image is compiled here from the system's own header (libstb-dev), so the
// fuzzer sees its coverage and the sanitizers check it; these definitions take
// the place of libstb.so's in this executable.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pw::fuzz::image(data, size);
  return 0;
}
