#pragma once
namespace pw {
// Number of usable CUDA devices; 0 without a GPU, a driver, or the CUDA backend.
int cuda_device_count();
bool cuda_built();  // whether this library was built with the CUDA backend
}  // namespace pw
