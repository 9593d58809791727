// cuDNN stand-ins for the CPU emulator (include/cudnn.h says what is answered): direct
// loops over NCHW/KCRS with the descriptor checks cuDNN makes, and a check that every
// buffer lies inside one device allocation. Float data accumulates in float (fma), in
// the order c, r, s; CUDNN_DEFAULT_MATH rounds float operands to tf32 first (Ampere+
// tensor cores; NVIDIA_TF32_OVERRIDE=0 is not modelled); double accumulates in double.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "include/cudnn.h"

namespace emu {
bool is_device_range(const void* p, size_t n);
void log_call(const char* name);
}

struct emu_cudnn {
  cudaStream_t s = nullptr;
};
struct emu_cudnn_tensor {
  bool set = false;
  cudnnDataType_t t = CUDNN_DATA_FLOAT;
  int n = 0, c = 0, h = 0, w = 0;
};
struct emu_cudnn_filter {
  bool set = false;
  cudnnDataType_t t = CUDNN_DATA_FLOAT;
  int k = 0, c = 0, h = 0, w = 0;
};
struct emu_cudnn_conv {
  bool set = false;
  int ph = 0, pw = 0, u = 1, v = 1, dh = 1, dw = 1, groups = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

size_t numel(const emu_cudnn_tensor* d) { return (size_t)d->n * d->c * d->h * d->w; }
size_t numel(const emu_cudnn_filter* d) { return (size_t)d->k * d->c * d->h * d->w; }
size_t esize(cudnnDataType_t t) { return t == CUDNN_DATA_DOUBLE ? 8 : 4; }

bool on_device(const char* what, const void* p, size_t elems, cudnnDataType_t t) {
  if (elems == 0 || emu::is_device_range(p, elems * esize(t))) return true;
  std::fprintf(stderr, "cuda-emu cuDNN: %s (%p, %zu elements) is not inside one device allocation\n", what, p, elems);
  return false;
}

float tf32(float x) {  // round to nearest (ties away), 10 mantissa bits: what tensor cores read
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &u, 4);
  return x;
}

// The geometry of one call, after the checks cuDNN makes between its descriptors.
struct Geom {
  int N, C, H, W, K, Cg, R, S, OH, OW, groups;
  const emu_cudnn_conv* conv;
  cudnnDataType_t t;
  bool tf32_ops;  // float data with tensor-op math allowed
  // Filter tap (r, s) as applied: CUDNN_CONVOLUTION flips the filter.
  int tap_r(int r) const { return conv->mode == CUDNN_CONVOLUTION ? R - 1 - r : r; }
  int tap_s(int s) const { return conv->mode == CUDNN_CONVOLUTION ? S - 1 - s : s; }
};

cudnnStatus_t geometry(const emu_cudnn_tensor* x, const emu_cudnn_filter* w, const emu_cudnn_conv* c,
                       const emu_cudnn_tensor* y, Geom& g) {
  if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
  if (x->t != w->t || x->t != y->t) return CUDNN_STATUS_BAD_PARAM;
  if (x->t != CUDNN_DATA_FLOAT && x->t != CUDNN_DATA_DOUBLE) return CUDNN_STATUS_NOT_SUPPORTED;
  if (c->groups < 1 || x->c % c->groups || w->k % c->groups || w->c * c->groups != x->c) return CUDNN_STATUS_BAD_PARAM;
  const int OH = (x->h + 2 * c->ph - c->dh * (w->h - 1) - 1) / c->u + 1;
  const int OW = (x->w + 2 * c->pw - c->dw * (w->w - 1) - 1) / c->v + 1;
  if (OH <= 0 || OW <= 0 || y->n != x->n || y->c != w->k || y->h != OH || y->w != OW) return CUDNN_STATUS_BAD_PARAM;
  g = {x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w, OH, OW, c->groups, c, x->t,
       x->t == CUDNN_DATA_FLOAT && c->math != CUDNN_FMA_MATH};
  return CUDNN_STATUS_SUCCESS;
}

// A dot product in the precision the call computes in.
template <class T>
struct Acc {
  bool t32;
  T sum = 0;
  void add(T a, T b) {
    if constexpr (sizeof(T) == 4) {
      if (t32) a = tf32(a), b = tf32(b);
      sum = std::fma(a, b, sum);
    } else {
      sum += a * b;
    }
  }
};

template <class T>
void blend(T* out, size_t i, T alpha, T beta, T v) {
  out[i] = beta == 0 ? alpha * v : alpha * v + beta * out[i];  // beta 0: out not read (cuDNN's rule)
}

template <class T>
void forward(const Geom& g, T alpha, const T* x, const T* w, T beta, T* y) {
  const int Kg = g.K / g.groups;
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k)
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          Acc<T> acc{g.tf32_ops};
          const int c0 = (k / Kg) * g.Cg;
          for (int c = 0; c < g.Cg; ++c)
            for (int r = 0; r < g.R; ++r) {
              const int ih = oh * g.conv->u - g.conv->ph + r * g.conv->dh;
              if (ih < 0 || ih >= g.H) continue;
              for (int s = 0; s < g.S; ++s) {
                const int iw = ow * g.conv->v - g.conv->pw + s * g.conv->dw;
                if (iw < 0 || iw >= g.W) continue;
                acc.add(x[(((size_t)n * g.C + c0 + c) * g.H + ih) * g.W + iw],
                        w[(((size_t)k * g.Cg + c) * g.R + g.tap_r(r)) * g.S + g.tap_s(s)]);
              }
            }
          blend(y, (((size_t)n * g.K + k) * g.OH + oh) * g.OW + ow, alpha, beta, acc.sum);
        }
}

template <class T>
void backward_data(const Geom& g, T alpha, const T* w, const T* dy, T beta, T* dx) {
  const int Kg = g.K / g.groups;
  for (int n = 0; n < g.N; ++n)
    for (int ci = 0; ci < g.C; ++ci)
      for (int ih = 0; ih < g.H; ++ih)
        for (int iw = 0; iw < g.W; ++iw) {
          Acc<T> acc{g.tf32_ops};
          const int grp = ci / g.Cg, c = ci % g.Cg;
          for (int k = grp * Kg; k < (grp + 1) * Kg; ++k)
            for (int r = 0; r < g.R; ++r) {
              const int th = ih + g.conv->ph - r * g.conv->dh;
              if (th < 0 || th % g.conv->u || th / g.conv->u >= g.OH) continue;
              for (int s = 0; s < g.S; ++s) {
                const int tw = iw + g.conv->pw - s * g.conv->dw;
                if (tw < 0 || tw % g.conv->v || tw / g.conv->v >= g.OW) continue;
                acc.add(dy[(((size_t)n * g.K + k) * g.OH + th / g.conv->u) * g.OW + tw / g.conv->v],
                        w[(((size_t)k * g.Cg + c) * g.R + g.tap_r(r)) * g.S + g.tap_s(s)]);
              }
            }
          blend(dx, (((size_t)n * g.C + ci) * g.H + ih) * g.W + iw, alpha, beta, acc.sum);
        }
}

template <class T>
void backward_filter(const Geom& g, T alpha, const T* x, const T* dy, T beta, T* dw) {
  const int Kg = g.K / g.groups;
  for (int k = 0; k < g.K; ++k)
    for (int c = 0; c < g.Cg; ++c)
      for (int r = 0; r < g.R; ++r)
        for (int s = 0; s < g.S; ++s) {
          Acc<T> acc{g.tf32_ops};
          const int ci = (k / Kg) * g.Cg + c;
          for (int n = 0; n < g.N; ++n)
            for (int oh = 0; oh < g.OH; ++oh) {
              const int ih = oh * g.conv->u - g.conv->ph + r * g.conv->dh;
              if (ih < 0 || ih >= g.H) continue;
              for (int ow = 0; ow < g.OW; ++ow) {
                const int iw = ow * g.conv->v - g.conv->pw + s * g.conv->dw;
                if (iw < 0 || iw >= g.W) continue;
                acc.add(dy[(((size_t)n * g.K + k) * g.OH + oh) * g.OW + ow],
                        x[(((size_t)n * g.C + ci) * g.H + ih) * g.W + iw]);
              }
            }
          blend(dw, (((size_t)k * g.Cg + c) * g.R + g.tap_r(r)) * g.S + g.tap_s(s), alpha, beta, acc.sum);
        }
}

template <class T>
T val(const void* p) {
  return *(const T*)p;
}

}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    default: return "CUDNN_STATUS_?";
  }
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  *h = new emu_cudnn{};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  h->s = s;  // streams execute in order in the emulator
  return CUDNN_STATUS_SUCCESS;
}

#define EMU_CUDNN_CREATE_DESTROY(Kind, Struct)                   \
  cudnnStatus_t cudnnCreate##Kind##Descriptor(Struct** d) {      \
    *d = new Struct{};                                          \
    return CUDNN_STATUS_SUCCESS;                                \
  }                                                             \
  cudnnStatus_t cudnnDestroy##Kind##Descriptor(Struct* d) {      \
    delete d;                                                   \
    return CUDNN_STATUS_SUCCESS;                                \
  }
EMU_CUDNN_CREATE_DESTROY(Tensor, emu_cudnn_tensor)
EMU_CUDNN_CREATE_DESTROY(Filter, emu_cudnn_filter)
EMU_CUDNN_CREATE_DESTROY(Convolution, emu_cudnn_conv)
#undef EMU_CUDNN_CREATE_DESTROY

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n,
                                         int c, int h, int w) {
  if (!d || n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (f != CUDNN_TENSOR_NCHW) return CUDNN_STATUS_NOT_SUPPORTED;  // not emulated: patchwork is NCHW
  *d = {true, t, n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k,
                                         int c, int h, int w) {
  if (!d || k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (f != CUDNN_TENSOR_NCHW) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = {true, t, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (!d || pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0)
    return CUDNN_STATUS_BAD_PARAM;
  d->set = true;
  d->ph = pad_h, d->pw = pad_w, d->u = u, d->v = v, d->dh = dilation_h, d->dw = dilation_w;
  d->mode = mode, d->compute = compute;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (!d || groups < 1) return CUDNN_STATUS_BAD_PARAM;
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  if (!d) return CUDNN_STATUS_BAD_PARAM;
  d->math = m;
  return CUDNN_STATUS_SUCCESS;
}

// The emulated algorithms need no workspace; the size queries still check the descriptors.
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t conv,
                                                      cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t,
                                                      size_t* bytes) {
  Geom g;
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (cudnnStatus_t st = geometry(x, w, conv, y, g)) return st;
  *bytes = 0;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                           cudnnTensorDescriptor_t dy,
                                                           cudnnConvolutionDescriptor_t conv,
                                                           cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t,
                                                           size_t* bytes) {
  Geom g;
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (cudnnStatus_t st = geometry(dx, w, conv, dy, g)) return st;
  *bytes = 0;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                             cudnnTensorDescriptor_t dy,
                                                             cudnnConvolutionDescriptor_t conv,
                                                             cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t, size_t* bytes) {
  Geom g;
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (cudnnStatus_t st = geometry(x, dw, conv, dy, g)) return st;
  *bytes = 0;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd, const void* x,
                                      cudnnFilterDescriptor_t wd, const void* w, cudnnConvolutionDescriptor_t conv,
                                      cudnnConvolutionFwdAlgo_t, void*, size_t, const void* beta,
                                      cudnnTensorDescriptor_t yd, void* y) {
  Geom g;
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (cudnnStatus_t st = geometry(xd, wd, conv, yd, g)) return st;
  if (!on_device("x", x, numel(xd), g.t) || !on_device("w", w, numel(wd), g.t) || !on_device("y", y, numel(yd), g.t))
    return CUDNN_STATUS_EXECUTION_FAILED;
  emu::log_call(g.t == CUDNN_DATA_DOUBLE ? "cudnnConvolutionForward f64"
                : g.tf32_ops            ? "cudnnConvolutionForward tf32"
                                        : "cudnnConvolutionForward f32");
  if (g.t == CUDNN_DATA_DOUBLE)
    forward(g, val<double>(alpha), (const double*)x, (const double*)w, val<double>(beta), (double*)y);
  else
    forward(g, val<float>(alpha), (const float*)x, (const float*)w, val<float>(beta), (float*)y);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t wd,
                                           const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
                                           cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdDataAlgo_t, void*,
                                           size_t, const void* beta, cudnnTensorDescriptor_t dxd, void* dx) {
  Geom g;
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (cudnnStatus_t st = geometry(dxd, wd, conv, dyd, g)) return st;
  if (!on_device("w", w, numel(wd), g.t) || !on_device("dy", dy, numel(dyd), g.t) ||
      !on_device("dx", dx, numel(dxd), g.t))
    return CUDNN_STATUS_EXECUTION_FAILED;
  emu::log_call(g.t == CUDNN_DATA_DOUBLE ? "cudnnConvolutionBackwardData f64" : "cudnnConvolutionBackwardData f32");
  if (g.t == CUDNN_DATA_DOUBLE)
    backward_data(g, val<double>(alpha), (const double*)w, (const double*)dy, val<double>(beta), (double*)dx);
  else
    backward_data(g, val<float>(alpha), (const float*)w, (const float*)dy, val<float>(beta), (float*)dx);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd,
                                             const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdFilterAlgo_t,
                                             void*, size_t, const void* beta, cudnnFilterDescriptor_t dwd, void* dw) {
  Geom g;
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (cudnnStatus_t st = geometry(xd, dwd, conv, dyd, g)) return st;
  if (!on_device("x", x, numel(xd), g.t) || !on_device("dy", dy, numel(dyd), g.t) ||
      !on_device("dw", dw, numel(dwd), g.t))
    return CUDNN_STATUS_EXECUTION_FAILED;
  emu::log_call(g.t == CUDNN_DATA_DOUBLE ? "cudnnConvolutionBackwardFilter f64" : "cudnnConvolutionBackwardFilter f32");
  if (g.t == CUDNN_DATA_DOUBLE)
    backward_filter(g, val<double>(alpha), (const double*)x, (const double*)dy, val<double>(beta), (double*)dw);
  else
    backward_filter(g, val<float>(alpha), (const float*)x, (const float*)dy, val<float>(beta), (float*)dw);
  return CUDNN_STATUS_SUCCESS;
}

namespace {
// db (1,K,1,1) = alpha * sum over n, h, w of dy (N,K,H,W) + beta * db.
template <class T>
void bias_grad(const emu_cudnn_tensor* dyd, T alpha, const T* dy, T beta, T* db) {
  for (int k = 0; k < dyd->c; ++k) {
    T s = 0;
    for (int n = 0; n < dyd->n; ++n)
      for (size_t i = 0; i < (size_t)dyd->h * dyd->w; ++i) s += dy[((size_t)n * dyd->c + k) * dyd->h * dyd->w + i];
    blend(db, (size_t)k, alpha, beta, s);
  }
}
// c = alpha * a + beta * c, a broadcast over c along each dimension where a has size 1.
template <class T>
void add_tensor(const emu_cudnn_tensor* ad, T alpha, const T* a, T beta, const emu_cudnn_tensor* cd, T* c) {
  for (int n = 0; n < cd->n; ++n)
    for (int k = 0; k < cd->c; ++k)
      for (int y = 0; y < cd->h; ++y)
        for (int x = 0; x < cd->w; ++x) {
          const size_t ai = (((size_t)(ad->n == 1 ? 0 : n) * ad->c + (ad->c == 1 ? 0 : k)) * ad->h +
                             (ad->h == 1 ? 0 : y)) * ad->w + (ad->w == 1 ? 0 : x);
          blend(c, (((size_t)n * cd->c + k) * cd->h + y) * cd->w + x, (T)1, beta, alpha * a[ai]);
        }
}
}  // namespace

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t dyd,
                                           const void* dy, const void* beta, cudnnTensorDescriptor_t dbd, void* db) {
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (!dyd || !dbd || !dyd->set || !dbd->set || dyd->t != dbd->t) return CUDNN_STATUS_BAD_PARAM;
  if (dbd->n != 1 || dbd->c != dyd->c || dbd->h != 1 || dbd->w != 1) return CUDNN_STATUS_BAD_PARAM;
  if (!on_device("dy", dy, numel(dyd), dyd->t) || !on_device("db", db, numel(dbd), dbd->t))
    return CUDNN_STATUS_EXECUTION_FAILED;
  emu::log_call("cudnnConvolutionBackwardBias");
  if (dyd->t == CUDNN_DATA_DOUBLE)
    bias_grad(dyd, val<double>(alpha), (const double*)dy, val<double>(beta), (double*)db);
  else
    bias_grad(dyd, val<float>(alpha), (const float*)dy, val<float>(beta), (float*)db);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t ad, const void* a,
                             const void* beta, cudnnTensorDescriptor_t cd, void* c) {
  if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
  if (!ad || !cd || !ad->set || !cd->set || ad->t != cd->t) return CUDNN_STATUS_BAD_PARAM;
  // cuDNN: each dimension of A equals C's or is 1.
  if ((ad->n != 1 && ad->n != cd->n) || (ad->c != 1 && ad->c != cd->c) || (ad->h != 1 && ad->h != cd->h) ||
      (ad->w != 1 && ad->w != cd->w))
    return CUDNN_STATUS_BAD_PARAM;
  if (!on_device("A", a, numel(ad), ad->t) || !on_device("C", c, numel(cd), cd->t)) return CUDNN_STATUS_EXECUTION_FAILED;
  emu::log_call("cudnnAddTensor");
  if (cd->t == CUDNN_DATA_DOUBLE)
    add_tensor(ad, val<double>(alpha), (const double*)a, val<double>(beta), cd, (double*)c);
  else
    add_tensor(ad, val<float>(alpha), (const float*)a, val<float>(beta), cd, (float*)c);
  return CUDNN_STATUS_SUCCESS;
}
