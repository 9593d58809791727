// CPU kernels of the activations that are not one-input maps: glu.
#include <algorithm>

#include "autograd/dispatch.h"
#include "kernels/activation/activation_kernels.h"
#include "kernels/activation/activation_math.h"

namespace pw {

namespace {

// x seen as (O, 2, HI): the halves a = x[:, 0] and b = x[:, 1] are contiguous
// blocks of HI = H * (product of the dims after `dim`) elements. Work items are
// (o, chunk of HI), fixed by the shape, each a simd loop (as in elementwise_cpu.cpp's map_cpu).
template <class F>
void glu_items(int64_t O, int64_t HI, F body) {  // body(o, m0, m1)
  const int64_t C = HI <= 16384 ? HI : 8192, nch = (HI + C - 1) / C;
#pragma omp parallel for if (O * HI > kParallelGrain)
  for (int64_t it = 0; it < O * nch; ++it) {
    const int64_t o = it / nch, m0 = it % nch * C;
    body(o, m0, std::min(HI, m0 + C));
  }
}

// y = a * sigmoid(b).   x: (O, 2, HI), y: (O, HI)
template <class T>
void glu_forward_loop(T* __restrict y, const T* __restrict x, int64_t O, int64_t HI) {
  glu_items(O, HI, [&](int64_t o, int64_t m0, int64_t m1) {
    const T* a = x + o * 2 * HI;
    const T* b = a + HI;
    T* yo = y + o * HI;
#pragma omp simd
    for (int64_t m = m0; m < m1; ++m) yo[m] = math::glu_fwd(a[m], b[m]);
  });
}

// da (+)= dy * s, db (+)= dy * a * s * (1 - s), s = sigmoid(b); kAcc: add, else write.
// dx, x: (O, 2, HI), dy: (O, HI)
template <class T, bool kAcc>
void glu_backward_loop(T* __restrict dx, const T* __restrict x, const T* __restrict dy, int64_t O, int64_t HI) {
  glu_items(O, HI, [&](int64_t o, int64_t m0, int64_t m1) {
    const T* a = x + o * 2 * HI;
    const T* b = a + HI;
    T* da = dx + o * 2 * HI;
    T* db = da + HI;
    const T* dyo = dy + o * HI;
#pragma omp simd
    for (int64_t m = m0; m < m1; ++m) {
      T ga, gb;
      math::glu_bwd(a[m], b[m], dyo[m], ga, gb);
      da[m] = kAcc ? da[m] + ga : ga;
      db[m] = kAcc ? db[m] + gb : gb;
    }
  });
}

}  // namespace

void glu_forward_cpu(Tensor& y, const Tensor& x, int64_t O, int64_t HI) {
  dispatch_float(x.dtype(), "glu", [&](auto tag) {
    using T = decltype(tag);
    glu_forward_loop(y.data<T>(), x.data<T>(), O, HI);
  });
}

void glu_backward_cpu(GradBuf dx, const Tensor& x, const Tensor& dy, int64_t O, int64_t HI) {
  dispatch_float(x.dtype(), "glu", [&](auto tag) {
    using T = decltype(tag);
    if (dx.accumulate) glu_backward_loop<T, true>(dx.data<T>(), x.data<T>(), dy.data<T>(), O, HI);
    else glu_backward_loop<T, false>(dx.data<T>(), x.data<T>(), dy.data<T>(), O, HI);
  });
}

}  // namespace pw
