// CUDA launchers of the index ops. Backward is deterministic without atomics:
// every dx element is owned by one thread, which sums its contributions in
// increasing output order (the CPU's order, so the sums match it bit for bit).
#pragma once
#include <cstdint>

namespace pw {

// y[o, j, :] = x[o, idx[j], :].   x: (O,n,K)  idx: (J)  y: (O,J,K).  T: float, double, int64_t
template <class T>
void index_select_forward_cuda(T* y, const T* x, const int64_t* idx, int64_t O, int64_t n, int64_t J, int64_t K);
// Forward was y[o, j, :] = x[o, idx[j], :].  The J indices bucketed by destination on the host:
// hit[h] (H destinations that receive anything), their js at order[hstart[h] .. hstart[h+1]) ascending.
// dx[o, hit[h], k] += sum of dy[o, j, k] over those j.   dx: (O,n,K)  dy: (O,J,K)  order: (J)  hstart: (H+1)
template <class T>
void index_select_backward_cuda(T* dx, const T* dy, const int64_t* order, const int64_t* hit, const int64_t* hstart,
                                int64_t O, int64_t n, int64_t J, int64_t K, int64_t H);
// y[o, j, k] = x[xo[o] + idx[o, j, k]*sd + xi[k]].   idx, y: (O,J,K)  xo: (O)  xi: (K)
template <class T>
void gather_forward_cuda(T* y, const T* x, const int64_t* idx, const int64_t* xo, const int64_t* xi, int64_t O,
                         int64_t J, int64_t K, int64_t sd);
// Forward was gather. One thread per destination (o, v, k) scans j in order:
// dx[xo[o] + v*sd + xi[k]] += sum over j with idx[o,j,k] == v of dy[o,j,k].   v in [0, n)
template <class T>
void gather_backward_cuda(T* dx, const T* dy, const int64_t* idx, const int64_t* xo, const int64_t* xi, int64_t O,
                          int64_t J, int64_t K, int64_t n, int64_t sd);

}  // namespace pw
