// CPU reference in double for flash attention (kernels/attention/flash_attention_cuda.h):
// the unfused formula, one (b,h) at a time with the whole (N,N) matrix, used by the tests.
//   s = scale * q k^T + bias;  p = softmax_rows(s);  lse = logsumexp_rows(s);  o = p v
// Fully masked rows (all s = -inf) give o = 0, lse = -inf and zero gradients, as the kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace pw::flash_ref {

// Sizes of one call; the bias is (Bb,Hb,N,N) with Bb in {1,B}, Hb in {1,NH}, or absent.
struct Dims {
  int B = 1, NH = 1, N = 1, HD = 1;
  int Bb = 1, Hb = 1;
  double scale = 1;
  size_t qkv_size() const { return (size_t)B * NH * N * HD; }
  size_t bias_size() const { return (size_t)Bb * Hb * N * N; }
  size_t head(int b, int h) const { return ((size_t)b * NH + h) * N * HD; }
  size_t bias_plane(int b, int h) const { return ((size_t)(Bb == 1 ? 0 : b) * Hb + (Hb == 1 ? 0 : h)) * N * N; }
};

// p (N,N) and lse (N) of head (b,h).   q, k: (B,NH,N,HD)  bias: (Bb,Hb,N,N) or null
inline void probs(std::vector<double>& p, std::vector<double>& lse, const double* q, const double* k,
                  const double* bias, const Dims& d, int b, int h) {
  const int N = d.N, HD = d.HD;
  const double* qh = q + d.head(b, h);
  const double* kh = k + d.head(b, h);
  const double* bp = bias ? bias + d.bias_plane(b, h) : nullptr;
  p.assign((size_t)N * N, 0.0);
  lse.assign(N, 0.0);
  for (int i = 0; i < N; ++i) {
    double* row = &p[(size_t)i * N];
    double m = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int c = 0; c < HD; ++c) s += qh[(size_t)i * HD + c] * kh[(size_t)j * HD + c];
      s *= d.scale;
      if (bp) s += bp[(size_t)i * N + j];
      row[j] = s;
      m = std::max(m, s);
    }
    if (m == -std::numeric_limits<double>::infinity()) {  // fully masked row
      std::fill(row, row + N, 0.0);
      lse[i] = m;
      continue;
    }
    double sum = 0;
    for (int j = 0; j < N; ++j) sum += (row[j] = std::exp(row[j] - m));
    for (int j = 0; j < N; ++j) row[j] /= sum;
    lse[i] = m + std::log(sum);
  }
}

// o: (B,NH,N,HD)  lse: (B,NH,N)
inline void forward(std::vector<double>& o, std::vector<double>& lse, const double* q, const double* k,
                    const double* v, const double* bias, const Dims& d) {
  const int N = d.N, HD = d.HD;
  o.assign(d.qkv_size(), 0.0);
  lse.assign((size_t)d.B * d.NH * N, 0.0);
  std::vector<double> p, l;
  for (int b = 0; b < d.B; ++b)
    for (int h = 0; h < d.NH; ++h) {
      probs(p, l, q, k, bias, d, b, h);
      const double* vh = v + d.head(b, h);
      double* oh = o.data() + d.head(b, h);
      for (int i = 0; i < N; ++i) {
        for (int j = 0; j < N; ++j)
          for (int c = 0; c < HD; ++c) oh[(size_t)i * HD + c] += p[(size_t)i * N + j] * vh[(size_t)j * HD + c];
        lse[((size_t)b * d.NH + h) * N + i] = l[i];
      }
    }
}

// dq, dk, dv: (B,NH,N,HD)  dbias: (Bb,Hb,N,N), the sum over the broadcast dims (left empty
// without a bias).   dout: (B,NH,N,HD)
//   dp = do v^T;  ds = p * (dp - rowsum(dp * p));  dq = scale ds k;  dk = scale ds^T q;  dv = p^T do
inline void backward(std::vector<double>& dq, std::vector<double>& dk, std::vector<double>& dv,
                     std::vector<double>& dbias, const double* q, const double* k, const double* v,
                     const double* dout, const double* bias, const Dims& d) {
  const int N = d.N, HD = d.HD;
  dq.assign(d.qkv_size(), 0.0);
  dk.assign(d.qkv_size(), 0.0);
  dv.assign(d.qkv_size(), 0.0);
  dbias.assign(bias ? d.bias_size() : 0, 0.0);
  std::vector<double> p, l, ds((size_t)N * N);
  for (int b = 0; b < d.B; ++b)
    for (int h = 0; h < d.NH; ++h) {
      probs(p, l, q, k, bias, d, b, h);
      const size_t off = d.head(b, h);
      for (int i = 0; i < N; ++i) {
        double dot = 0;
        for (int j = 0; j < N; ++j) {
          double dp = 0;
          for (int c = 0; c < HD; ++c) dp += dout[off + (size_t)i * HD + c] * v[off + (size_t)j * HD + c];
          ds[(size_t)i * N + j] = dp;
          dot += dp * p[(size_t)i * N + j];
        }
        for (int j = 0; j < N; ++j) ds[(size_t)i * N + j] = p[(size_t)i * N + j] * (ds[(size_t)i * N + j] - dot);
      }
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          const double pij = p[(size_t)i * N + j], sij = ds[(size_t)i * N + j];
          for (int c = 0; c < HD; ++c) {
            dq[off + (size_t)i * HD + c] += d.scale * sij * k[off + (size_t)j * HD + c];
            dk[off + (size_t)j * HD + c] += d.scale * sij * q[off + (size_t)i * HD + c];
            dv[off + (size_t)j * HD + c] += pij * dout[off + (size_t)i * HD + c];
          }
        }
      if (bias)
        for (size_t e = 0; e < (size_t)N * N; ++e) dbias[d.bias_plane(b, h) + e] += ds[e];
    }
}

}  // namespace pw::flash_ref
