#include "runtime/cuda/device_info.h"

namespace pw {
#if defined(PW_HAVE_CUDA)
bool cuda_built() { return true; }
#else
bool cuda_built() { return false; }
int cuda_device_count() { return 0; }
#endif
}  // namespace pw
