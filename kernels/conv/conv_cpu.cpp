// CPU kernels of conv2d / conv1d (conv1d is conv2d on a height-1 image).
//
// Dense and grouped convolutions are im2col + GEMM. A chunk of images is unrolled
// side by side into one column matrix col (C*KH*KW, nb*OH*OW), so each group is one
// large GEMM  y_g (O/groups, nb*OH*OW) = w_g (O/groups, C/groups*KH*KW) @ col_g,
// which oneDNN threads well even for one image, and the weight gradient is one GEMM
// per chunk with a long K instead of a sum of small per-image products.
// The chunk size depends only on the shapes (never on the thread count), so
// results do not change with the number of threads.
//
// Depthwise convolutions (groups == C, O a multiple of C) have a GEMM K of only
// KH*KW: a direct kernel is faster and needs no column buffer.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/conv/conv_kernels.h"
#include "autograd/profile.h"
#include "kernels/gemm/gemm.h"
#include "kernels/unfold/im2col.h"

namespace pw {

// Column buffer budget per chunk, in elements (default 2^18: 1 MB of float, at least one
// image). Small enough that the GEMM reads the columns back from cache: measured on
// 1 thread, a 3x3 conv (32,64,32,32) runs its forward in 35 ms with 2^18 and 70 ms with
// 2^22; small images still get a GEMM N in the thousands (ViT patch embedding: 8192).
int64_t& detail::conv_col_budget() {
  static int64_t budget = int64_t(1) << 18;
  return budget;
}

namespace {

bool is_depthwise(const ConvShape& s) { return s.groups == s.g.C && s.groups > 1; }
bool stride1(const ConvShape& s) { return s.g.SH == 1 && s.g.SW == 1; }

// Uninitialised scratch (a std::vector would first zero the whole column buffer).
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[std::max<int64_t>(n, 1)]);
}

int64_t chunk_images(const ConvShape& s) {
  int64_t per_image = std::max<int64_t>(1, s.g.C * s.g.kk() * s.g.ohw());
  return std::max<int64_t>(1, std::min(s.B, detail::conv_col_budget() / per_image));
}

// col (C*KH*KW, nb*OHW) <- images [b0, b0+nb) of x (B,C,H,W), image j in columns [j*OHW, (j+1)*OHW).
template <class T>
void im2col_chunk(T* col, const T* x, const ConvShape& s, const TapRanges& r, int64_t b0, int64_t nb) {
  const ConvGeom& g = s.g;
  const int64_t L = nb * g.ohw();
#pragma omp parallel for collapse(2) if (nb * g.C * g.kk() * g.ohw() > kParallelGrain)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t c = 0; c < g.C; ++c) im2col(col + j * g.ohw(), L, x + (b0 + j) * g.C * g.H * g.W, g, r, c, c + 1);
}

// dx images [b0, b0+nb) += col2im(dcol); each (image, channel) task owns its plane of dx.
template <class T>
void col2im_chunk(T* dx, const T* dcol, const ConvShape& s, const TapRanges& r, int64_t b0, int64_t nb) {
  const ConvGeom& g = s.g;
  const int64_t L = nb * g.ohw();
#pragma omp parallel if (nb * g.C * g.kk() * g.ohw() > kParallelGrain)
  {
    std::vector<T> plane(g.H * g.W);  // col2im scratch
#pragma omp for collapse(2)
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t c = 0; c < g.C; ++c)
        col2im(dx + (b0 + j) * g.C * g.H * g.W, dcol + j * g.ohw(), L, g, r, c, c + 1, plane.data());
  }
}

// A 1x1 kernel with stride 1 and no padding reads x as it is: with one image per chunk
// the image itself is the column matrix.
bool pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0;
}

// y (B,O,OH,OW) = conv(x (B,C,H,W), w (O,Cg,KH,KW)) + bias (O, may be null): im2col + GEMM.
// One image per chunk writes straight into y; several go through yc (O, nb*OHW).
template <class T>
void conv_forward_loop(T* y, const T* x, const T* w, const T* bias, const ConvShape& s) {
  const int64_t ohw = s.g.ohw(), O = s.O, Og = s.Og(), rows = s.rows(), chw = s.g.C * s.g.H * s.g.W;
  const int64_t nb_max = chunk_images(s);
  const bool direct = nb_max == 1 && pointwise(s.g);
  TapRanges r(s.g);
  auto col = scratch<T>(direct ? 1 : s.g.C * s.g.kk() * nb_max * ohw);
  auto yc = scratch<T>(nb_max > 1 ? O * nb_max * ohw : 1);
  for (int64_t b0 = 0; b0 < s.B; b0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.B - b0), L = nb * ohw;
    const T* cols = direct ? x + b0 * chw : col.get();
    if (!direct) im2col_chunk(col.get(), x, s, r, b0, nb);
    if (nb_max == 1) {  // y image (O, OHW) = bias, then += w @ col
      T* yb = y + b0 * O * ohw;
      if (bias)
        for (int64_t o = 0; o < O; ++o) std::fill(yb + o * ohw, yb + (o + 1) * ohw, bias[o]);
      gemm_strided_batched(false, false, s.groups, Og, L, rows, T(1), w, rows, Og * rows, cols, L, rows * L,
                           bias ? T(1) : T(0), yb, L, Og * L);
      continue;
    }
    gemm_strided_batched(false, false, s.groups, Og, L, rows, T(1), w, rows, Og * rows, cols, L, rows * L, T(0),
                         yc.get(), L, Og * L);
    // yc (O, nb, OHW) -> y (nb, O, OHW), adding the bias
#pragma omp parallel for collapse(2) if (O * L > kParallelGrain)
    for (int64_t j = 0; j < nb; ++j) {
      for (int64_t o = 0; o < O; ++o) {
        const T* src = yc.get() + o * L + j * ohw;
        T* dst = y + ((b0 + j) * O + o) * ohw;
        const T bo = bias ? bias[o] : T(0);
        for (int64_t i = 0; i < ohw; ++i) dst[i] = src[i] + bo;
      }
    }
  }
}

// Forward was y = conv(x, w):  dw_g (+)= dy_g @ col_g^T,  dcol_g = w_g^T @ dy_g then dx (+)= col2im(dcol).
// dx, dw may be null; acc_x / acc_w: add, else write (GradBuf). col2im can only add, so the
// caller zeroes a fresh dx for that path (acc_x is then true).
// dy: (B,O,OH,OW); with several images per chunk it is regrouped as dyc (O, nb*OHW).
template <class T>
void conv_backward_loop(T* dx, bool acc_x, T* dw, bool acc_w, const T* dy, const T* x, const T* w,
                       const ConvShape& s) {
  const int64_t ohw = s.g.ohw(), O = s.O, Og = s.Og(), rows = s.rows(), chw = s.g.C * s.g.H * s.g.W;
  const int64_t nb_max = chunk_images(s);
  const bool direct = nb_max == 1 && pointwise(s.g);
  TapRanges r(s.g);
  auto col = scratch<T>(direct ? 1 : s.g.C * s.g.kk() * nb_max * ohw);
  auto dyc = scratch<T>(nb_max > 1 ? O * nb_max * ohw : 1);
  // Over several chunks dw is summed in dwc and added (or, fresh, copied) once: the backward
  // adds exactly its own contribution. With one chunk the GEMM writes or adds straight into dw.
  std::vector<T> dwc;
  T* dw_sum = dw;
  if (dw && nb_max < s.B) {
    dwc.assign(O * rows, T(0));
    dw_sum = dwc.data();
  }
  for (int64_t b0 = 0; b0 < s.B; b0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.B - b0), L = nb * ohw;
    const T* dys = dy + b0 * O * ohw;  // (O, L) when nb == 1
    if (nb_max > 1) {
#pragma omp parallel for collapse(2) if (O * L > kParallelGrain)
      for (int64_t j = 0; j < nb; ++j)
        for (int64_t o = 0; o < O; ++o)
          std::copy_n(dy + ((b0 + j) * O + o) * ohw, ohw, dyc.get() + o * L + j * ohw);
      dys = dyc.get();
    }
    if (dw) {
      const T* cols = direct ? x + b0 * chw : col.get();
      if (!direct) im2col_chunk(col.get(), x, s, r, b0, nb);
      gemm_strided_batched(false, true, s.groups, Og, rows, L, T(1), dys, L, Og * L, cols, L, rows * L,
                           dw_sum != dw || acc_w ? T(1) : T(0), dw_sum, rows, Og * rows);
    }
    if (dx && direct) {  // dx image (C, HW) (+)= w^T @ dy
      gemm_strided_batched(true, false, s.groups, rows, L, Og, T(1), w, rows, Og * rows, dys, L, Og * L,
                           acc_x ? T(1) : T(0), dx + b0 * chw, L, rows * L);
    } else if (dx) {  // col now holds dcol
      gemm_strided_batched(true, false, s.groups, rows, L, Og, T(1), w, rows, Og * rows, dys, L, Og * L, T(0),
                           col.get(), L, rows * L);
      col2im_chunk(dx, col.get(), s, r, b0, nb);
    }
  }
  if (dw_sum != dw) {
    if (acc_w) for (int64_t i = 0; i < O * rows; ++i) dw[i] += dwc[i];
    else std::copy(dwc.begin(), dwc.end(), dw);
  }
}

// --- Depthwise, stride 1: padded planes ---------------------------------------------
// With stride 1, a zero-padded input plane xp (Hp,Wp) turns every kernel tap into one
// contiguous sweep: output (oh,ow) lives at i = oh*Wp + ow of an (OH,Wp) buffer and reads
// xp[i + kh*DH*Wp + kw*DW]. The Wp-OW extra columns of each row are computed and dropped
// (forward) or held at zero (backward): the loops are long unit-stride sweeps with no bounds
// logic. Sweeping i < n = (OH-1)*Wp + OW keeps every read inside xp (n + D == Hp*Wp, with
// D = (KH-1)*DH*Wp + (KW-1)*DW the largest tap offset).
struct Padded {
  int64_t Hp, Wp, n, D;
  std::vector<int64_t> off;  // (KH*KW): tap (kh,kw) reads at i + off
  explicit Padded(const ConvGeom& g)
      : Hp(g.H + 2 * g.PH), Wp(g.W + 2 * g.PW), n((g.OH - 1) * Wp + g.OW),
        D((g.KH - 1) * g.DH * Wp + (g.KW - 1) * g.DW) {
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) off.push_back(kh * g.DH * Wp + kw * g.DW);
  }
};

// xp (Hp,Wp) <- x (H,W) with PH/PW zero rows/columns around it.
template <class T>
void pad_plane(T* xp, const T* x, const ConvGeom& g, const Padded& p) {
  std::fill(xp, xp + g.PH * p.Wp, T(0));
  for (int64_t h = 0; h < g.H; ++h) {
    T* row = xp + (g.PH + h) * p.Wp;
    std::fill(row, row + g.PW, T(0));
    std::copy_n(x + h * g.W, g.W, row + g.PW);
    std::fill(row + g.PW + g.W, row + p.Wp, T(0));
  }
  std::fill(xp + (g.PH + g.H) * p.Wp, xp + p.Hp * p.Wp, T(0));
}

// acc[i] += sum_t wt[t] * src[i + off[t]] for i < n. A block of 4 vectors of outputs
// (32 floats or 16 doubles) stays in registers while every tap streams past: one load
// and one FMA per tap and vector. (GCC/Clang vector types: plain loops with a local
// accumulator array were compiled to stack spills.) Works in whole blocks: touches acc
// up to sweep_len(n) and reads src up to sweep_len(n) - 1 + max(off); callers size their
// buffers for that.
constexpr int64_t kSweep = 32;  // the largest block, in elements
inline int64_t sweep_len(int64_t n) { return (n + kSweep - 1) / kSweep * kSweep; }

template <class T>
struct Vec {
  typedef T V __attribute__((vector_size(32)));  // one AVX register
  static constexpr int64_t lanes = 32 / sizeof(T);
};

template <class T>
void tap_sweep(T* acc, const T* src, const T* wt, const int64_t* off, int64_t ntaps, int64_t n) {
  using V = typename Vec<T>::V;
  constexpr int64_t L = Vec<T>::lanes;
  static_assert(4 * L <= kSweep, "tap_sweep block larger than kSweep");
  auto load = [](const T* p) { V v; std::memcpy(&v, p, sizeof(V)); return v; };  // unaligned
  for (int64_t i0 = 0; i0 < n; i0 += 4 * L) {
    V a0 = load(acc + i0), a1 = load(acc + i0 + L), a2 = load(acc + i0 + 2 * L), a3 = load(acc + i0 + 3 * L);
    for (int64_t t = 0; t < ntaps; ++t) {
      const T w = wt[t];
      const T* sp = src + i0 + off[t];
      a0 += w * load(sp);
      a1 += w * load(sp + L);
      a2 += w * load(sp + 2 * L);
      a3 += w * load(sp + 3 * L);
    }
    std::memcpy(acc + i0, &a0, sizeof(V));
    std::memcpy(acc + i0 + L, &a1, sizeof(V));
    std::memcpy(acc + i0 + 2 * L, &a2, sizeof(V));
    std::memcpy(acc + i0 + 3 * L, &a3, sizeof(V));
  }
}

// y (B,O,OH,OW) = depthwise conv, stride 1. One (image, input channel) per task: x is padded
// once for the channel's m outputs.
template <class T>
void depthwise_s1_forward_cpu(T* y, const T* x, const T* w, const T* bias, const ConvShape& s) {
  const ConvGeom& g = s.g;
  const int64_t O = s.O, C = g.C, m = O / C, kk = g.kk();
  const Padded p(g);
#pragma omp parallel if (s.B * O * g.ohw() * kk > kParallelGrain)
  {
    // xp: (Hp,Wp) + a zero tail for the last block's reads; acc: (OH,Wp) in whole blocks
    std::vector<T> xp(p.Hp * p.Wp + kSweep, T(0)), acc(sweep_len(p.n));
#pragma omp for collapse(2)
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t c = 0; c < C; ++c) {
        pad_plane(xp.data(), x + (b * C + c) * g.H * g.W, g, p);
        for (int64_t o = c * m; o < (c + 1) * m; ++o) {
          std::fill(acc.begin(), acc.end(), bias ? bias[o] : T(0));
          tap_sweep(acc.data(), xp.data(), w + o * kk, p.off.data(), kk, p.n);
          T* yo = y + (b * O + o) * g.ohw();
          for (int64_t oh = 0; oh < g.OH; ++oh) std::copy_n(acc.data() + oh * p.Wp, g.OW, yo + oh * g.OW);
        }
      }
    }
  }
}

// dyq (2D + n) <- dy plane (OH,OW) at dyq[D + oh*Wp + ow]; everything else stays as it was (zero).
template <class T>
void spread_dy(T* dyq, const T* dyo, const ConvGeom& g, const Padded& p) {
  for (int64_t oh = 0; oh < g.OH; ++oh) std::copy_n(dyo + oh * g.OW, g.OW, dyq + p.D + oh * p.Wp);
}

// Forward was the stride-1 depthwise y = conv(x, w).
// dx: the scatter dxp[i + off_t] += w_t * dy[i] read as a gather over a zero-extended dy,
//     dxp[j] += sum_t w_t * dyq[j + D - off_t], so it is a tap_sweep too (one task per (b,c)).
// dw[o,t] += sum over b of the dot of dy[b,o] (zero in the extra columns) with xp shifted by off_t.
template <class T>
void depthwise_s1_backward_cpu(T* dx, bool acc_x, T* dw, bool acc_w, const T* dy, const T* x, const T* w,
                               const ConvShape& s) {
  const ConvGeom& g = s.g;
  const int64_t O = s.O, C = g.C, m = O / C, kk = g.kk(), hw = g.H * g.W;
  const Padded p(g);
  const bool par = s.B * O * g.ohw() * kk > kParallelGrain;
  if (dx) {
    std::vector<int64_t> back(kk);  // gather offsets D - off_t
    for (int64_t t = 0; t < kk; ++t) back[t] = p.D - p.off[t];
#pragma omp parallel if (par)
    {
      // dyq: (2D + n) + a zero tail for the last block's reads; acc: (Hp,Wp) + a block
      std::vector<T> dyq(2 * p.D + p.n + kSweep, T(0)), acc(p.Hp * p.Wp + kSweep);
#pragma omp for collapse(2)
      for (int64_t b = 0; b < s.B; ++b) {
        for (int64_t c = 0; c < C; ++c) {
          // only the rows of xp that hold x are needed: j in [PH*Wp, (PH+H)*Wp)
          T* a = acc.data() + g.PH * p.Wp;
          std::fill(a, a + sweep_len(g.H * p.Wp), T(0));
          for (int64_t o = c * m; o < (c + 1) * m; ++o) {
            spread_dy(dyq.data(), dy + (b * O + o) * g.ohw(), g, p);
            tap_sweep(a, dyq.data() + g.PH * p.Wp, w + o * kk, back.data(), kk, g.H * p.Wp);
          }
          T* dxc = dx + (b * C + c) * hw;
          for (int64_t h = 0; h < g.H; ++h) {
            const T* src = a + h * p.Wp + g.PW;
            T* dst = dxc + h * g.W;
            if (acc_x) for (int64_t i = 0; i < g.W; ++i) dst[i] += src[i];
            else std::copy_n(src, g.W, dst);
          }
        }
      }
    }
  }
  if (dw) {
#pragma omp parallel if (par)
    {
      std::vector<T> dyq(2 * p.D + p.n, T(0)), xp(p.Hp * p.Wp);
      std::vector<double> acc(kk);  // NOTE: double even for float: B*OH*OW terms per tap
#pragma omp for
      for (int64_t o = 0; o < O; ++o) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t b = 0; b < s.B; ++b) {
          pad_plane(xp.data(), x + (b * C + o / m) * hw, g, p);
          spread_dy(dyq.data(), dy + (b * O + o) * g.ohw(), g, p);
          const T* d = dyq.data() + p.D;
          for (int64_t t = 0; t < kk; ++t) {
            const T* xs = xp.data() + p.off[t];
            T dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int64_t i = 0; i < p.n; ++i) dot += d[i] * xs[i];
            acc[t] += dot;
          }
        }
        for (int64_t t = 0; t < kk; ++t) dw[o * kk + t] = acc_w ? dw[o * kk + t] + (T)acc[t] : (T)acc[t];
      }
    }
  }
}

// --- Depthwise, any stride ------------------------------------------------------------
// Depthwise: y[b,o] = sum_{kh,kw} w[o,0,kh,kw] * x[b, o/m, oh*SH-PH+kh*DH, ow*SW-PW+kw*DW] + bias[o],
// m = O/C outputs per input channel. One (image, output channel) plane per task.
template <class T>
void depthwise_forward_cpu(T* y, const T* x, const T* w, const T* bias, const ConvShape& s) {
  const ConvGeom& g = s.g;
  const int64_t O = s.O, m = O / g.C, ohw = g.ohw();
  TapRanges r(g);
#pragma omp parallel for collapse(2) if (s.B * O * ohw * g.kk() > kParallelGrain)
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t o = 0; o < O; ++o) {
      const T* xc = x + (b * g.C + o / m) * g.H * g.W;
      T* yo = y + (b * O + o) * ohw;
      std::fill(yo, yo + ohw, bias ? bias[o] : T(0));
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = w[(o * g.KH + kh) * g.KW + kw];
          const TapRange rh = r.h[kh], rw = r.w[kw];
          for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
            T* yr = yo + oh * g.OW;
            const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
            if (g.SW == 1) for (int64_t ow = rw.lo; ow < rw.hi; ++ow) yr[ow] += wv * xc[base + ow];
            else for (int64_t ow = rw.lo; ow < rw.hi; ++ow) yr[ow] += wv * xc[base + ow * g.SW];
          }
        }
      }
    }
  }
}

// Forward was depthwise y = conv(x, w). dx[b,c] += w * dy over c's m output channels (one task
// per (b,c), so no two tasks touch one plane); dw[o] += sum over b and pixels of dy * x (one task per o).
template <class T>
void depthwise_backward_cpu(T* dx, bool acc_x, T* dw, bool acc_w, const T* dy, const T* x, const T* w,
                            const ConvShape& s) {
  const ConvGeom& g = s.g;
  const int64_t O = s.O, C = g.C, m = O / C, ohw = g.ohw(), hw = g.H * g.W;
  TapRanges r(g);
  const bool par = s.B * O * ohw * g.kk() > kParallelGrain;
  if (dx) {
#pragma omp parallel if (par)
    {
      std::vector<T> plane(hw);  // dx[b,c] summed here over c's outputs and taps, then added once
#pragma omp for collapse(2)
      for (int64_t b = 0; b < s.B; ++b) {
        for (int64_t c = 0; c < C; ++c) {
          std::fill(plane.begin(), plane.end(), T(0));
          for (int64_t o = c * m; o < (c + 1) * m; ++o) {
            const T* dyo = dy + (b * O + o) * ohw;
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const T wv = w[(o * g.KH + kh) * g.KW + kw];
                const TapRange rh = r.h[kh], rw = r.w[kw];
                for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
                  const T* dyr = dyo + oh * g.OW;
                  const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
                  T* pl = plane.data();
                  if (g.SW == 1) for (int64_t ow = rw.lo; ow < rw.hi; ++ow) pl[base + ow] += wv * dyr[ow];
                  else for (int64_t ow = rw.lo; ow < rw.hi; ++ow) pl[base + ow * g.SW] += wv * dyr[ow];
                }
              }
            }
          }
          T* dxc = dx + (b * C + c) * hw;
          if (acc_x) for (int64_t i = 0; i < hw; ++i) dxc[i] += plane[i];
          else std::copy(plane.begin(), plane.end(), dxc);
        }
      }
    }
  }
  if (dw) {
#pragma omp parallel for if (par)
    for (int64_t o = 0; o < O; ++o) {
      const int64_t c = o / m;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const TapRange rh = r.h[kh], rw = r.w[kw];
          double acc = 0;  // NOTE: double even for float: B*OH*OW terms
          for (int64_t b = 0; b < s.B; ++b) {
            const T* xc = x + (b * C + c) * hw;
            const T* dyo = dy + (b * O + o) * ohw;
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              const T* dyr = dyo + oh * g.OW;
              const int64_t base = (oh * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
              T part = 0;  // one output row in T, the rows summed in double
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow) part += dyr[ow] * xc[base + ow * g.SW];
              acc += part;
            }
          }
          T& d = dw[(o * g.KH + kh) * g.KW + kw];
          d = acc_w ? d + (T)acc : (T)acc;
        }
      }
    }
  }
}

// Forward added bias[o] to every pixel of output channel o: dbias[o] (+)= sum over b, oh, ow of dy.
template <class T>
void conv_bias_backward_loop(T* dbias, bool accumulate, const T* dy, const ConvShape& s) {
  const int64_t ohw = s.g.ohw();
#pragma omp parallel for if (s.B * s.O * ohw > kParallelGrain)
  for (int64_t o = 0; o < s.O; ++o) {
    double acc = 0;  // NOTE: double even for float: B*OH*OW terms
    for (int64_t b = 0; b < s.B; ++b) {
      const T* p = dy + (b * s.O + o) * ohw;
      T part = 0;
      for (int64_t i = 0; i < ohw; ++i) part += p[i];
      acc += part;
    }
    dbias[o] = accumulate ? dbias[o] + (T)acc : (T)acc;
  }
}


}  // namespace

void conv_forward_cpu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const ConvShape& s) {
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const T* bias = b.defined() ? b.data<T>() : nullptr;
    // the dense path's GEMMs count themselves; the depthwise loops count here (2 per multiply-add)
    if (is_depthwise(s)) count_flops(2 * s.B * s.O * s.g.ohw() * s.g.kk());
    if (is_depthwise(s) && stride1(s)) depthwise_s1_forward_cpu(y.data<T>(), x.data<T>(), w.data<T>(), bias, s);
    else if (is_depthwise(s)) depthwise_forward_cpu(y.data<T>(), x.data<T>(), w.data<T>(), bias, s);
    else conv_forward_loop(y.data<T>(), x.data<T>(), w.data<T>(), bias, s);
  });
}

void conv_backward_cpu(GradBuf dx, GradBuf dw, GradBuf db, const Tensor& dy, const Tensor& x, const Tensor& w,
                       const ConvShape& s) {
  if (s.B * s.O * s.g.ohw() == 0) {  // no outputs: the gradients are zero
    dx.zero_if_fresh();
    dw.zero_if_fresh();
    db.zero_if_fresh();
    return;
  }
  dispatch_float(dy.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    if (dx || dw) {
      if (is_depthwise(s) && stride1(s)) {
        depthwise_s1_backward_cpu(dx.data<T>(), dx.accumulate, dw.data<T>(), dw.accumulate, dy.data<T>(), x.data<T>(),
                                  w.data<T>(), s);
      } else if (is_depthwise(s)) {
        depthwise_backward_cpu(dx.data<T>(), dx.accumulate, dw.data<T>(), dw.accumulate, dy.data<T>(), x.data<T>(),
                               w.data<T>(), s);
      } else {
        // col2im adds: a fresh dx is zeroed unless the pointwise path writes it with the GEMM.
        const bool direct = chunk_images(s) == 1 && pointwise(s.g);
        if (!direct) dx.zero_if_fresh();
        conv_backward_loop(dx.data<T>(), dx.accumulate, dw.data<T>(), dw.accumulate, dy.data<T>(), x.data<T>(),
                           w.data<T>(), s);
      }
    }
    if (db) conv_bias_backward_loop(db.data<T>(), db.accumulate, dy.data<T>(), s);
  });
}

}  // namespace pw
