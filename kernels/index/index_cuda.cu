// CUDA kernels of the index ops (see index_kernels.h). Backward is deterministic
// without atomics: every dx element is owned by one thread, which sums its
// contributions in increasing output order (the CPU's order, so the sums match
// it bit for bit).
#include <vector>

#include "autograd/dispatch.h"
#include "kernels/index/index_kernels.h"
#include "kernels/shape/strided.h"  // dispatch_copy
#include "runtime/cuda/common.cuh"

namespace pw {

namespace {

template <class T>
__global__ void index_select_fwd_kernel(T* y, const T* __restrict__ x, const int64_t* idx, int64_t O, int64_t n,
                                        int64_t J, int64_t K) {
  PW_GRID_STRIDE(t, O * J * K) {
    const int64_t k = t % K, oj = t / K, j = oj % J, o = oj / J;
    y[t] = x[(o * n + idx[j]) * K + k];
  }
}

// The J indices bucketed by destination: hit[h] (H destinations that receive anything),
// their js at order[hstart[h] .. hstart[h+1]) ascending.  One thread per (o, h, k):
// dx[o, hit[h], k] += sum of dy[o, j, k] over those j.   dx: (O,n,K)  dy: (O,J,K)
template <class T>
__global__ void index_select_bwd_kernel(T* dx, const T* __restrict__ dy, const int64_t* order, const int64_t* hit,
                                        const int64_t* hstart, int64_t O, int64_t n, int64_t J, int64_t K,
                                        int64_t H) {
  PW_GRID_STRIDE(t, O * H * K) {
    const int64_t k = t % K, oh = t / K, h = oh % H, o = oh / H;
    const int64_t s0 = hstart[h], s1 = hstart[h + 1];
    T acc = dy[(o * J + order[s0]) * K + k];
    for (int64_t s = s0 + 1; s < s1; ++s) acc += dy[(o * J + order[s]) * K + k];
    dx[(o * n + hit[h]) * K + k] += acc;
  }
}

template <class T>
__global__ void gather_fwd_kernel(T* y, const T* __restrict__ x, const int64_t* idx, const int64_t* xo,
                                  const int64_t* xi, int64_t O, int64_t J, int64_t K, int64_t sd) {
  PW_GRID_STRIDE(r, O * J * K) {
    const int64_t k = r % K, o = r / K / J;
    y[r] = x[xo[o] + idx[r] * sd + xi[k]];
  }
}

// One thread per destination (o, v, k) scans j in order:
// dx[xo[o] + v*sd + xi[k]] += sum over j with idx[o,j,k] == v of dy[o,j,k].   v in [0, n)
template <class T>
__global__ void gather_bwd_kernel(T* dx, const T* __restrict__ dy, const int64_t* idx, const int64_t* xo,
                                  const int64_t* xi, int64_t O, int64_t J, int64_t K, int64_t n, int64_t sd) {
  PW_GRID_STRIDE(t, O * n * K) {
    const int64_t k = t % K, ov = t / K, v = ov % n, o = ov / n;
    T acc = T(0);
    bool any = false;  // the CPU's order: the first contribution, then += the rest in j order
    for (int64_t j = 0; j < J; ++j) {
      const int64_t r = (o * J + j) * K + k;
      if (idx[r] == v) {
        acc = any ? acc + dy[r] : dy[r];
        any = true;
      }
    }
    if (any) dx[xo[o] + v * sd + xi[k]] += acc;
  }
}

// A host vector as an i64 CUDA tensor.
Tensor to_device(const std::vector<int64_t>& v) { return from_indices(v, {(int64_t)v.size()}).to(Device::CUDA); }

}  // namespace

void index_select_forward_cuda(Tensor& y, const Tensor& x, const Tensor& idx, const IndexSelectGeom& s) {
  const int64_t n = s.O * s.J * s.K;
  if (n == 0) return;
  dispatch_copy(x.dtype(), s.op, [&](auto tag) {
    using T = decltype(tag);
    index_select_fwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        y.data<T>(), x.data<T>(), idx.data<int64_t>(), s.O, s.n, s.J, s.K);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void index_select_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& idx, const IndexSelectGeom& s) {
  dx.zero_if_fresh();  // a scatter: rows no index names get nothing
  // Bucket the indices by destination on the host (stable; NOTE: copying idx is a sync).
  const Tensor ih = idx.cpu();
  const int64_t* p = ih.data<int64_t>();
  const int64_t n = s.n, J = s.J;
  std::vector<int64_t> start(n + 1, 0), order(J), hit, hstart;
  for (int64_t j = 0; j < J; ++j) ++start[p[j] + 1];
  for (int64_t v = 0; v < n; ++v) start[v + 1] += start[v];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t j = 0; j < J; ++j) order[fill[p[j]]++] = j;  // ascending j within a bucket
  for (int64_t v = 0; v < n; ++v)
    if (start[v + 1] > start[v]) {
      hit.push_back(v);
      hstart.push_back(start[v]);
    }
  hstart.push_back(J);
  const int64_t H = (int64_t)hit.size();
  if (s.O * H * s.K == 0) return;
  const Tensor order_d = to_device(order), hit_d = to_device(hit), hstart_d = to_device(hstart);
  dispatch_float(dy.dtype(), s.op, [&](auto tag) {
    using T = decltype(tag);
    index_select_bwd_kernel<T><<<cuda::grid_for(s.O * H * s.K), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), order_d.data<int64_t>(), hit_d.data<int64_t>(), hstart_d.data<int64_t>(), s.O,
        n, J, s.K, H);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void gather_forward_cuda(Tensor& y, const Tensor& x, const Tensor& idx, const GatherMap& m) {
  const int64_t n = m.O * m.J * m.K;
  if (n == 0) return;
  const Tensor xo = to_device(m.xo), xi = to_device(m.xi);
  dispatch_copy(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    gather_fwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        y.data<T>(), x.data<T>(), idx.data<int64_t>(), xo.data<int64_t>(), xi.data<int64_t>(), m.O, m.J, m.K, m.sd);
  });
  PW_CUDA_LAUNCH_CHECK();
}

void gather_backward_cuda(GradBuf dx, const Tensor& dy, const Tensor& idx, const GatherMap& m) {
  dx.zero_if_fresh();  // a scatter: elements no index names get nothing
  const int64_t n = m.O * m.n * m.K;
  if (n == 0 || m.J == 0) return;
  const Tensor xo = to_device(m.xo), xi = to_device(m.xi);
  dispatch_float(dy.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    gather_bwd_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        dx.data<T>(), dy.data<T>(), idx.data<int64_t>(), xo.data<int64_t>(), xi.data<int64_t>(), m.O, m.J, m.K, m.n,
        m.sd);
  });
  PW_CUDA_LAUNCH_CHECK();
}

}  // namespace pw
