// Ops of the relative position encodings (nn/posenc.h builds the encodings from them):
//   rel_bias_gather     a learned table gathered by a fixed index into an additive attention
//                       bias (Swin's relative position bias, iRPE's bias mode)
//   rel_logits_gather   per-row gather of query-table products into logits (Shaw's key side)
//   rel_logits_scatter  its transpose: probabilities summed per table row (Shaw's value side)
//   rel_shift           Transformer-XL's shift of query-by-distance scores into logits
//   rope_qkv            rotary embedding of q and k inside a packed qkv (2D axial RoPE)
// CPU kernels in posenc_cpu.cpp, CUDA in posenc_cuda.cu: gather-style on both (every
// output element or row is owned by one thread; no atomics, deterministic).
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace pw {

// A relative-position index over N tokens into a table of T rows:
// idx[i,j] in [0,T) names the table row of the pair (query i, key j); -1 gives the pair
// no term (a class token among patch tokens). Built once on the host, with its inverse
// (the pairs of each table row) for the gather-style backward of rel_bias_gather.
struct RelIndex {
  int64_t N = 0, T = 0;
  Tensor idx;      // (N,N) int64
  Tensor inv_off;  // (T+1) int64: the pairs with index t are inv_pos[inv_off[t] .. inv_off[t+1])
  Tensor inv_pos;  // (P) int64: i*N+j, ascending within each t; P = the pairs with idx >= 0
  // From host values, row-major (N,N); every value in [-1, T) (else a pw::Error).
  static RelIndex build(const std::vector<int64_t>& idx, int64_t N, int64_t T, Device d = Device::CPU);
  RelIndex to(Device d) const;
  Device device() const { return idx.device(); }
};

// bias[h,i,j] = table[idx[i,j], h], 0 where idx is -1.   table: (T,NH) -> bias: (NH,N,N)
// dtable[t,h] = sum of dbias[h,i,j] over the pairs with idx[i,j] = t.
Tensor rel_bias_gather(const Tensor& table, const RelIndex& index);

// y[...,i,j] = x[...,i,idx[i,j]], 0 where idx is -1.   x: (...,N,T) -> y: (...,N,N)
// Shaw's key side: x = q r^T, so y[i,j] = q_i . r_idx(i,j).
Tensor rel_logits_gather(const Tensor& x, const RelIndex& index);
// y[...,i,t] = sum of p[...,i,j] over the j with idx[i,j] = t.   p: (...,N,N) -> y: (...,N,T)
// Shaw's value side: y r = sum_j p_ij r_idx(i,j). The transpose of rel_logits_gather.
Tensor rel_logits_scatter(const Tensor& p, const RelIndex& index);

// Transformer-XL's rel_shift (Dai et al. 2019, appendix B), bidirectional: x holds, per
// query i, scores against the 2N-1 relative distances N-1, N-2, .., -(N-1) (column c is
// distance N-1-c); y[...,i,j] = x[...,i, j + N-1-i], the score of distance i - j.
// The same values as XL's pad/reshape/slice trick, as one gather.   x: (...,N,2N-1) -> y: (...,N,N)
Tensor rel_shift(const Tensor& x);

// Rotary embedding of the q and k parts of a packed qkv: every pair (2m, 2m+1) of a head's
// q and k at token n is rotated by the angle with cosine cos[n,m] and sine sin[n,m]; v is
// passed through.   qkv: (B,N,3*NH*HD) read as (B,N,3,NH,HD)  cos, sin: (N,HD/2), qkv's
// dtype and device (constants: no gradient)  y: qkv's shape.
Tensor rope_qkv(const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t heads);

}  // namespace pw
