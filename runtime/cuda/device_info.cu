// The first CUDA translation unit: device discovery. Compiled into every build
// that finds nvcc, so the CUDA path of the build is exercised from day one.
#include <cuda_runtime.h>

#include "runtime/cuda/device_info.h"

namespace pw {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

}  // namespace pw
