// Asking for a CUDA tensor where CUDA cannot be used (a build without it, or no
// device) is one clear pw::Error, never a crash. Runs everywhere, CI included.
#include <doctest/doctest.h>

#include "kernels/ops.h"
#include "runtime/cuda/device_info.h"
#include "runtime/cuda/runtime.h"

using namespace pw;

TEST_CASE("a CUDA tensor without a usable CUDA device is a clear error") {
  if (cuda::available()) {
    MESSAGE("CUDA is available here; checking that CUDA tensors work instead");
    CHECK(zeros({3}, DType::F32, Device::CUDA).to_vector() == std::vector<double>{0, 0, 0});
    return;
  }
  CHECK_FALSE(cuda::unavailable_reason().empty());
  CHECK(cuda_device_count() == 0);
  CHECK_THROWS_WITH_AS(empty({2, 3}, DType::F32, Device::CUDA), doctest::Contains("CUDA is not available"), pw::Error);
  CHECK_THROWS_WITH_AS(zeros({2}, DType::F32, Device::CUDA), doctest::Contains("CUDA is not available"), pw::Error);
  CHECK_THROWS_WITH_AS(ones({2}).cuda(), doctest::Contains("CUDA is not available"), pw::Error);
  CHECK_THROWS_WITH_AS(normal({2}, 0, 1, DType::F32, nullptr, Device::CUDA), doctest::Contains("CUDA is not available"),
                       pw::Error);
  // The cpu path is untouched.
  CHECK(ones({2}).to(Device::CPU).to_vector() == std::vector<double>{1, 1});
}
