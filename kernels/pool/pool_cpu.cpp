// CPU pooling kernels, forward beside backward. Every op treats its input as
// P = B*C independent planes; loops run in parallel over planes or over rows of
// planes, and every output or gradient element is written by one thread in a
// fixed order, so results never depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/pool/pool_kernels.h"
#include "kernels/pool/pool_math.h"

namespace pw {

namespace {

// ---------------------------------------------------------------------------
// avg pool.   x: (P,H,W)  y: (P,OH,OW)

template <class T>
void avg_pool_forward_loop(T* y, const T* x, const PoolGeom& g) {
#pragma omp parallel for collapse(2) if (g.work() > kParallelGrain)
  for (int64_t p = 0; p < g.P; ++p) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const T* xp = x + p * g.H * g.W;
      T* yp = y + p * g.OH * g.OW;
      const math::PoolWindow& wh = g.rows[oh];
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const math::PoolWindow& ww = g.cols[ow];
        T sum = 0;
        for (int64_t h = wh.lo; h < wh.hi; ++h)
          for (int64_t w = ww.lo; w < ww.hi; ++w) sum += xp[h * g.W + w];
        yp[oh * g.OW + ow] = sum / T(math::avg_pool_divisor(wh, ww, g.count_include_pad));
      }
    }
  }
}

// Backward gathers instead of scattering: every dx element sums all of its
// contributions first and is then written (fresh buffer) or added to ONCE. One
// += per element keeps accumulation exact (a second backward adds precisely the
// same numbers) and thread-independent.

// The outputs whose windows cover input index i along one axis are [first, last).
struct Cover {
  int64_t first, last;
};
std::vector<Cover> covers(const std::vector<math::PoolWindow>& wins, int64_t in) {
  std::vector<Cover> c(in, Cover{0, 0});
  // Windows move forward monotonically, so each input's covering outputs are contiguous.
  for (int64_t o = (int64_t)wins.size() - 1; o >= 0; --o)
    for (int64_t i = wins[o].lo; i < wins[o].hi; ++i) {
      if (c[i].last == 0) c[i].last = o + 1;
      c[i].first = o;
    }
  return c;
}
// 1 / (this axis's share of the divisor) per output: the avg divisor is a product
// of a row factor and a column factor (see math::avg_pool_divisor).
template <class T>
std::vector<T> inv_factors(const std::vector<math::PoolWindow>& wins, bool count_include_pad) {
  std::vector<T> f(wins.size());
  for (size_t o = 0; o < wins.size(); ++o)
    f[o] = T(1) / T(count_include_pad ? wins[o].padded : wins[o].hi - wins[o].lo);
  return f;
}

// forward was y[oh,ow] = sum(window) / divisor;
// dx[h,w] (+)= sum over windows covering (h,w) of dy[oh,ow] / divisor; kAcc: add, else write.
template <class T, bool kAcc>
void avg_pool_backward_loop(T* dx, const T* dy, const PoolGeom& g) {
  std::vector<Cover> ch = covers(g.rows, g.H), cw = covers(g.cols, g.W);
  std::vector<T> fh = inv_factors<T>(g.rows, g.count_include_pad);
  std::vector<T> fw = inv_factors<T>(g.cols, g.count_include_pad);
  // Rows of dx are independent: parallel over all P*H of them.
#pragma omp parallel for collapse(2) if (g.work() > kParallelGrain)
  for (int64_t p = 0; p < g.P; ++p) {
    for (int64_t h = 0; h < g.H; ++h) {
      const T* dyp = dy + p * g.OH * g.OW;
      T* dxr = dx + (p * g.H + h) * g.W;
      for (int64_t w = 0; w < g.W; ++w) {
        T acc = 0;
        for (int64_t oh = ch[h].first; oh < ch[h].last; ++oh) {
          T r = 0;
          for (int64_t ow = cw[w].first; ow < cw[w].last; ++ow) r += dyp[oh * g.OW + ow] * fw[ow];
          acc += r * fh[oh];
        }
        dxr[w] = kAcc ? dxr[w] + acc : acc;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// max pool.   x: (P,H,W)  y, argmax: (P,OH,OW); argmax is the flat index h*W+w
// of the winner inside its plane (torch's indices).

template <class T>
void max_pool_forward_loop(T* y, int64_t* argmax, const T* x, const PoolGeom& g) {
#pragma omp parallel for collapse(2) if (g.work() > kParallelGrain)
  for (int64_t p = 0; p < g.P; ++p) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const T* xp = x + p * g.H * g.W;
      T* yp = y + p * g.OH * g.OW;
      int64_t* ap = argmax + p * g.OH * g.OW;
      const math::PoolWindow& wh = g.rows[oh];
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const math::PoolWindow& ww = g.cols[ow];
        // Windows are never empty (pad <= kernel/2, and the ceil-mode rule).
        T best = -std::numeric_limits<T>::infinity();
        int64_t at = wh.lo * g.W + ww.lo;
        for (int64_t h = wh.lo; h < wh.hi; ++h)
          for (int64_t w = ww.lo; w < ww.hi; ++w) {
            T v = xp[h * g.W + w];
            if (math::max_pool_takes(v, best)) best = v, at = h * g.W + w;
          }
        yp[oh * g.OW + ow] = best;
        ap[oh * g.OW + ow] = at;
      }
    }
  }
}
// forward was y[o] = x[argmax[o]];  dx[argmax[o]] (+)= dy[o].
// Overlapping windows (stride < kernel) can share a winner; then a plane's
// contributions are summed in a scratch plane first, so each dx element is
// written or added to once (exact accumulation across backward calls, as for avg
// pool). Without overlap each winner gets one dy; a fresh plane is zeroed first
// (a scatter cannot write every element).
template <class T>
void max_pool_backward_loop(T* dx, bool accumulate, const T* dy, const int64_t* argmax, const PoolGeom& g) {
  int64_t n_out = g.OH * g.OW, n_in = g.H * g.W;
  bool overlap = g.sH < g.kH || g.sW < g.kW;
#pragma omp parallel if (g.P * (n_out + n_in) > kParallelGrain)
  {
    std::vector<T> scratch(overlap ? n_in : 0);
#pragma omp for
    for (int64_t p = 0; p < g.P; ++p) {
      T* dxp = dx + p * n_in;
      const T* dyp = dy + p * n_out;
      const int64_t* ap = argmax + p * n_out;
      if (!overlap) {
        if (!accumulate) std::fill(dxp, dxp + n_in, T(0));
        for (int64_t o = 0; o < n_out; ++o) dxp[ap[o]] += dyp[o];
        continue;
      }
      std::fill(scratch.begin(), scratch.end(), T(0));
      for (int64_t o = 0; o < n_out; ++o) scratch[ap[o]] += dyp[o];
      if (accumulate) for (int64_t i = 0; i < n_in; ++i) dxp[i] += scratch[i];
      else std::copy(scratch.begin(), scratch.end(), dxp);
    }
  }
}

// ---------------------------------------------------------------------------
// global avg pool.   x: (P,HW)  y: (P)

// Sum of n contiguous values with 8 fixed partial sums: vectorisable, and the
// same order on every run.
template <class T>
T plane_sum(const T* x, int64_t n) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += x[i + j];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

template <class T>
void global_avg_pool_forward_loop(T* y, const T* x, int64_t P, int64_t HW) {
  T inv = T(1) / T(HW);
#pragma omp parallel for if (P * HW > kParallelGrain)
  for (int64_t p = 0; p < P; ++p) y[p] = plane_sum(x + p * HW, HW) * inv;
}
// forward was y[p] = mean(x[p, :]);  dx[p, :] (+)= dy[p] / HW; kAcc: add, else write.
template <class T, bool kAcc>
void global_avg_pool_backward_loop(T* dx, const T* dy, int64_t P, int64_t HW) {
  T inv = T(1) / T(HW);
#pragma omp parallel for if (P * HW > kParallelGrain)
  for (int64_t p = 0; p < P; ++p) {
    T d = dy[p] * inv;
    T* dxp = dx + p * HW;
    for (int64_t i = 0; i < HW; ++i) dxp[i] = kAcc ? dxp[i] + d : d;
  }
}

}  // namespace

void avg_pool_forward_cpu(Tensor& y, const Tensor& x, const PoolGeom& g) {
  dispatch_float(x.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    avg_pool_forward_loop(y.data<T>(), x.data<T>(), g);
  });
}
void avg_pool_backward_cpu(GradBuf dx, const Tensor& dy, const PoolGeom& g) {
  dispatch_float(dy.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    if (dx.accumulate) avg_pool_backward_loop<T, true>(dx.data<T>(), dy.data<T>(), g);
    else avg_pool_backward_loop<T, false>(dx.data<T>(), dy.data<T>(), g);
  });
}

void max_pool_forward_cpu(Tensor& y, Tensor& argmax, const Tensor& x, const PoolGeom& g) {
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    max_pool_forward_loop(y.data<T>(), argmax.data<int64_t>(), x.data<T>(), g);
  });
}
void max_pool_backward_cpu(GradBuf dx, const Tensor& dy, const Tensor& argmax, const PoolGeom& g) {
  dispatch_float(dy.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    max_pool_backward_loop(dx.data<T>(), dx.accumulate, dy.data<T>(), argmax.data<int64_t>(), g);
  });
}

void global_avg_pool_forward_cpu(Tensor& y, const Tensor& x, int64_t P, int64_t HW) {
  dispatch_float(x.dtype(), "global_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    global_avg_pool_forward_loop(y.data<T>(), x.data<T>(), P, HW);
  });
}
void global_avg_pool_backward_cpu(GradBuf dx, const Tensor& dy, int64_t P, int64_t HW) {
  dispatch_float(dy.dtype(), "global_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    if (dx.accumulate) global_avg_pool_backward_loop<T, true>(dx.data<T>(), dy.data<T>(), P, HW);
    else global_avg_pool_backward_loop<T, false>(dx.data<T>(), dy.data<T>(), P, HW);
  });
}

}  // namespace pw
