// CPU pooling kernels, forward beside backward. Every op treats its input as
// P = B*C independent planes; loops run in parallel over planes or over rows of
// planes, and every output or gradient element is written by one thread in a
// fixed order, so results never depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/dispatch.h"
#include "autograd/function.h"
#include "kernels/pool/pool.h"
#include "kernels/pool/pool_cuda.h"
#include "kernels/pool/pool_math.h"

namespace pw {

namespace {

// A 2-D pooling over P planes of (H,W) into (OH,OW); 1-D pooling is H = 1.
struct PoolGeom {
  int64_t P = 0, H = 0, W = 0, OH = 0, OW = 0;
  int64_t kH = 1, kW = 1, sH = 1, sW = 1, padH = 0, padW = 0;
  bool ceil_mode = false, count_include_pad = true;
  // Each output row's / column's window, computed once and shared by all planes.
  std::vector<math::PoolWindow> rows;  // (OH)
  std::vector<math::PoolWindow> cols;  // (OW)
  int64_t work() const { return P * OH * OW * kH * kW; }
  PoolDims dims() const { return PoolDims{P, H, W, OH, OW, kH, kW, sH, sW, padH, padW}; }
};

// Checks one axis of a pooling and returns its output length.
//   what: "height", "width" or "length" for the message.
int64_t pool_axis(const char* op, const Tensor& x, const char* what, int64_t in, int64_t k,
                  int64_t s, int64_t p, bool ceil_mode) {
  PW_CHECK(k > 0 && s > 0, op, ": kernel and stride must be positive, got kernel ", k,
           " and stride ", s, " along the ", what, " of ", x.str());
  PW_CHECK(p >= 0 && p <= k / 2, op, ": padding ", p, " along the ", what,
           " must be in [0, kernel/2] = [0, ", k / 2, "] for kernel ", k, " (as in torch); input ",
           x.str());
  PW_CHECK(k <= in + 2 * p, op, ": kernel ", k, " is larger than the padded input ", what, " ",
           in, " + 2*", p, " of ", x.str(), "; use a smaller kernel or more padding");
  int64_t out = math::pool_out_size(in, k, s, p, ceil_mode);
  PW_CHECK(out > 0, op, ": output ", what, " would be ", out, " for ", x.str());
  return out;
}

PoolGeom make_geom(const char* op, const Tensor& x, int64_t H, int64_t W, std::array<int64_t, 2> k,
                   std::array<int64_t, 2> s, std::array<int64_t, 2> p, bool ceil_mode,
                   bool count_include_pad, bool one_d) {
  PoolGeom g;
  g.H = H;
  g.W = W;
  g.P = x.size(0) * x.size(1);
  g.kH = k[0], g.kW = k[1], g.sH = s[0], g.sW = s[1], g.padH = p[0], g.padW = p[1];
  g.ceil_mode = ceil_mode;
  g.count_include_pad = count_include_pad;
  g.OH = one_d ? 1 : pool_axis(op, x, "height", H, k[0], s[0], p[0], ceil_mode);
  g.OW = pool_axis(op, x, one_d ? "length" : "width", W, k[1], s[1], p[1], ceil_mode);
  g.rows.resize(g.OH);
  g.cols.resize(g.OW);
  for (int64_t o = 0; o < g.OH; ++o) g.rows[o] = math::pool_window(o, g.kH, g.sH, g.padH, g.H);
  for (int64_t o = 0; o < g.OW; ++o) g.cols[o] = math::pool_window(o, g.kW, g.sW, g.padW, g.W);
  return g;
}

// ---------------------------------------------------------------------------
// avg pool.   x: (P,H,W)  y: (P,OH,OW)

template <class T>
void avg_pool_forward_cpu(T* y, const T* x, const PoolGeom& g) {
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
// contributions first and is then added to ONCE. The engine accumulates straight
// into a leaf's existing .grad, and one += per element keeps that exact
// (a second backward adds precisely the same numbers) and thread-independent.

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
// dx[h,w] += sum over windows covering (h,w) of dy[oh,ow] / divisor.
template <class T>
void avg_pool_backward_cpu(T* dx, const T* dy, const PoolGeom& g) {
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
        dxr[w] += acc;
      }
    }
  }
}

struct AvgPoolFn final : Node {
  PoolGeom g;
  const char* op = "avg_pool2d";
  const char* name() const override { return op; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (!gr.needs(0)) return;
    dispatch_float(dy.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) avg_pool_backward_cuda<T>(gr[0].data<T>(), dy.data<T>(), g.dims(), g.count_include_pad);
        return;
      }
      avg_pool_backward_cpu(gr[0].data<T>(), dy.data<T>(), g);
    });
  }
};

Tensor avg_pool_impl(const char* op, const Tensor& x, const PoolGeom& g, const Shape& out_shape) {
  Tensor y = empty(out_shape, x.dtype(), x.device());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) avg_pool_forward_cuda<T>(y.data<T>(), x.data<T>(), g.dims(), g.count_include_pad);
      return;
    }
    avg_pool_forward_cpu(y.data<T>(), x.data<T>(), g);
  });
  if (auto n = record<AvgPoolFn>(y, {x})) {
    n->g = g;
    n->op = op;
  }
  return y;
}

// ---------------------------------------------------------------------------
// max pool.   x: (P,H,W)  y, argmax: (P,OH,OW); argmax is the flat index h*W+w
// of the winner inside its plane (torch's indices).

template <class T>
void max_pool_forward_cpu(T* y, int64_t* argmax, const T* x, const PoolGeom& g) {
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
// forward was y[o] = x[argmax[o]];  dx[argmax[o]] += dy[o].
// Overlapping windows (stride < kernel) can share a winner; then a plane's
// contributions are summed in a scratch plane first, so each dx element is
// added to once (exact accumulation across backward calls, as for avg pool).
template <class T>
void max_pool_backward_cpu(T* dx, const T* dy, const int64_t* argmax, const PoolGeom& g) {
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
        for (int64_t o = 0; o < n_out; ++o) dxp[ap[o]] += dyp[o];
        continue;
      }
      std::fill(scratch.begin(), scratch.end(), T(0));
      for (int64_t o = 0; o < n_out; ++o) scratch[ap[o]] += dyp[o];
      for (int64_t i = 0; i < n_in; ++i) dxp[i] += scratch[i];
    }
  }
}

struct MaxPool2dFn final : Node {
  PoolGeom g;
  Tensor argmax;  // (B,C,OH,OW) i64
  const char* name() const override { return "max_pool2d"; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (!gr.needs(0)) return;
    dispatch_float(dy.dtype(), "max_pool2d", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) max_pool_backward_cuda<T>(gr[0].data<T>(), dy.data<T>(), argmax.data<int64_t>(), g.dims());
        return;
      }
      max_pool_backward_cpu(gr[0].data<T>(), dy.data<T>(), argmax.data<int64_t>(), g);
    });
  }
  void release() override { argmax = Tensor(); }
};

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
void global_avg_pool_forward_cpu(T* y, const T* x, int64_t P, int64_t HW) {
  T inv = T(1) / T(HW);
#pragma omp parallel for if (P * HW > kParallelGrain)
  for (int64_t p = 0; p < P; ++p) y[p] = plane_sum(x + p * HW, HW) * inv;
}
// forward was y[p] = mean(x[p, :]);  dx[p, :] += dy[p] / HW.
template <class T>
void global_avg_pool_backward_cpu(T* dx, const T* dy, int64_t P, int64_t HW) {
  T inv = T(1) / T(HW);
#pragma omp parallel for if (P * HW > kParallelGrain)
  for (int64_t p = 0; p < P; ++p) {
    T d = dy[p] * inv;
    T* dxp = dx + p * HW;
    for (int64_t i = 0; i < HW; ++i) dxp[i] += d;
  }
}

struct GlobalAvgPool2dFn final : Node {
  int64_t P = 0, HW = 0;
  const char* name() const override { return "global_avg_pool2d"; }
  void backward(const Tensor& dy, Grads& gr) override {
    if (!gr.needs(0)) return;
    dispatch_float(dy.dtype(), "global_avg_pool2d", [&](auto tag) {
      using T = decltype(tag);
      if (dy.device() == Device::CUDA) {
        if constexpr (kHaveCuda) global_avg_pool_backward_cuda<T>(gr[0].data<T>(), dy.data<T>(), P, HW);
        return;
      }
      global_avg_pool_backward_cpu(gr[0].data<T>(), dy.data<T>(), P, HW);
    });
  }
};

// x may live on the CPU or on CUDA; every op below dispatches on x.device().
void check_rank(const char* op, const Tensor& x, int64_t rank, const char* layout) {
  PW_CHECK(x.defined(), op, ": input is an undefined tensor");
  PW_CHECK(x.dim() == rank, op, ": expected a ", rank, "-d input ", layout, ", got ", x.str());
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, bool ceil_mode, bool count_include_pad) {
  const char* op = "avg_pool2d";
  check_rank(op, x, 4, "(B,C,H,W)");
  PoolGeom g = make_geom(op, x, x.size(2), x.size(3), kernel, stride, padding, ceil_mode,
                         count_include_pad, /*one_d=*/false);
  return avg_pool_impl(op, x, g, {x.size(0), x.size(1), g.OH, g.OW});
}

Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool1d";
  check_rank(op, x, 3, "(B,C,L)");
  PoolGeom g = make_geom(op, x, 1, x.size(2), {1, kernel}, {1, stride}, {0, padding}, ceil_mode,
                         count_include_pad, /*one_d=*/true);
  return avg_pool_impl(op, x, g, {x.size(0), x.size(1), g.OW});
}

Tensor global_avg_pool2d(const Tensor& x) {
  const char* op = "global_avg_pool2d";
  check_rank(op, x, 4, "(B,C,H,W)");
  int64_t P = x.size(0) * x.size(1), HW = x.size(2) * x.size(3);
  PW_CHECK(HW > 0, op, ": empty planes in ", x.str(), "; H and W must be positive");
  Tensor y = empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) global_avg_pool_forward_cuda<T>(y.data<T>(), x.data<T>(), P, HW);
      return;
    }
    global_avg_pool_forward_cpu(y.data<T>(), x.data<T>(), P, HW);
  });
  if (auto n = record<GlobalAvgPool2dFn>(y, {x})) n->P = P, n->HW = HW;
  return y;
}

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, bool ceil_mode) {
  const char* op = "max_pool2d";
  check_rank(op, x, 4, "(B,C,H,W)");
  PoolGeom g = make_geom(op, x, x.size(2), x.size(3), kernel, stride, padding, ceil_mode,
                         /*count_include_pad=*/true, /*one_d=*/false);
  Tensor y = empty({x.size(0), x.size(1), g.OH, g.OW}, x.dtype(), x.device());
  Tensor argmax = empty(y.shape(), DType::I64, x.device());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.device() == Device::CUDA) {
      if constexpr (kHaveCuda) max_pool_forward_cuda<T>(y.data<T>(), argmax.data<int64_t>(), x.data<T>(), g.dims());
      return;
    }
    max_pool_forward_cpu(y.data<T>(), argmax.data<int64_t>(), x.data<T>(), g);
  });
  if (auto n = record<MaxPool2dFn>(y, {x})) {
    n->g = g;
    n->argmax = argmax;
  }
  return y;
}

}  // namespace pw
