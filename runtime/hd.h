// PW_HD marks per-element math that both the CPU loops and (under nvcc) the
// CUDA kernels call, so each formula is written exactly once.
#pragma once
#if defined(__CUDACC__)
#define PW_HD __host__ __device__
#else
#define PW_HD
#endif
