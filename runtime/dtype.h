// The element types and devices every layer names (the runtime's CUDA copies
// and fills included), below Tensor. Their names and sizes: autograd/tensor.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pw {

// F32/F64 are computed on; I64 holds indices and labels; BF16/F16 are storage
// formats reserved for the CUDA backend's mixed precision.
enum class DType : uint8_t { F32, F64, I64, BF16, F16 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
const char* device_name(Device d);

}  // namespace pw
