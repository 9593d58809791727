// CUDA launcher of the strided box loop (strided.h): every copying shape op and
// its backward run through it on CUDA, from the same StridedPlan as the CPU.
#pragma once
#include "kernels/shape/strided.h"

namespace pw {

// a[i.sa] (Acc: +=, else =) b[i.sb] for every multi-index i of the plan; with
// reduction dims (sa == 0, the backward of expand/repeat) each a element sums
// its b elements in the plan's row-major order (the CPU's order), one thread per
// a element: deterministic, no atomics.   a, b: device pointers already offset.
// T: float, double, int64_t.
template <bool Acc, class T> void strided_cuda(T* a, const T* b, const StridedPlan& p);

}  // namespace pw
