// Broadcasting elementwise kernels: one thread per output element (grid-stride),
// its input offsets from the collapsed BcastDesc; formulas from elementwise_math.h.
#include "runtime/cuda/common.cuh"
#include "kernels/elementwise/elementwise_cuda.h"
#include "kernels/elementwise/elementwise_math.h"

namespace pw {

namespace {

using K = BcastKind;

__host__ __device__ constexpr bool three_inputs(K k) { return k == K::DivGradB || k == K::Where; }

template <K k, class T>
__device__ __forceinline__ T apply(T u, T v, T w, T value) {
  if constexpr (k == K::Add) return math::add_fwd(u, v);
  else if constexpr (k == K::Sub) return math::sub_fwd(u, v);
  else if constexpr (k == K::Mul) return math::mul_fwd(u, v);
  else if constexpr (k == K::Div) return math::div_fwd(u, v);
  else if constexpr (k == K::DivGradB) return math::div_bwd_b(u, v, w);
  else if constexpr (k == K::Where) return u != T(0) ? v : w;
  else if constexpr (k == K::WhereGradA) return v != T(0) ? u : T(0);
  else if constexpr (k == K::WhereGradB) return v != T(0) ? T(0) : u;
  else return v != T(0) ? value : u;
}

// y: (d.numel); in0, in1, in2: per d.stride
template <K k, class T>
__global__ void bcast_kernel(T* __restrict__ y, const T* __restrict__ a, const T* __restrict__ b,
                             const T* __restrict__ c, BcastDesc d, T value, bool accumulate) {
  PW_GRID_STRIDE(i, d.numel) {
    int64_t oa = 0, ob = 0, oc = 0, r = i;
    for (int j = d.nd - 1; j >= 0; --j) {
      const int64_t q = r / d.size[j], idx = r - q * d.size[j];
      r = q;
      oa += idx * d.stride[0][j];
      ob += idx * d.stride[1][j];
      if constexpr (three_inputs(k)) oc += idx * d.stride[2][j];
    }
    T w = T(0);
    if constexpr (three_inputs(k)) w = c[oc];
    const T v = apply<k>(a[oa], b[ob], w, value);
    if (accumulate) y[i] += v;
    else y[i] = v;
  }
}

}  // namespace

template <class T>
void bcast_cuda(BcastKind k, T* y, const T* in0, const T* in1, const T* in2, const BcastDesc& d, double value,
                bool accumulate) {
  if (d.numel == 0) return;
  PW_CHECK(!three_inputs(k) || in2 != nullptr, "bcast_cuda: kind ", (int)k, " needs three inputs");
  const unsigned g = cuda::grid_for(d.numel);
  switch (k) {
#define PW_KIND(name)                                                                                   \
  case K::name:                                                                                         \
    bcast_kernel<K::name, T><<<g, cuda::kBlock, 0, cuda::stream()>>>(y, in0, in1, in2, d, (T)value, accumulate); \
    break;
    PW_KIND(Add) PW_KIND(Sub) PW_KIND(Mul) PW_KIND(Div) PW_KIND(DivGradB) PW_KIND(Where) PW_KIND(WhereGradA)
    PW_KIND(WhereGradB) PW_KIND(MaskedFill)
#undef PW_KIND
    default: PW_FAIL("bcast_cuda: unknown kind ", (int)k);
  }
  PW_CUDA_LAUNCH_CHECK();
}

template void bcast_cuda<float>(BcastKind, float*, const float*, const float*, const float*, const BcastDesc&, double,
                                bool);
template void bcast_cuda<double>(BcastKind, double*, const double*, const double*, const double*, const BcastDesc&,
                                 double, bool);

}  // namespace pw
