// Local-window attention with factorised relative embeddings: SASA (Ramachandran et
// al. 2019, arXiv 1906.05909) over an H x W patch grid, computed only over each
// query's window, O(M K^2 HD) per head instead of the masked O(M^2 HD). The math is
// local_attention_math.h's; CPU: per-row loops (local_attention_cpu.cpp), CUDA: one
// thread per row (local_attention_cuda.cu).
#pragma once
#include <cstdint>

#include "autograd/tensor.h"

namespace pw {

// q, k, v: (B,NH,M,HD), M = skip + H*W (the `skip` leading tokens are class tokens, the
// patches follow in raster order); row, col: (K, HD/2), K odd, r = K/2. y: (B,NH,M,HD).
//   patch query i at (ri, ci): keys = every class token and the patches (rj, cj) with
//     |rj-ri| <= r, |cj-ci| <= r (clipped at the border, no padding keys);
//     logit = scale q_i.k_j + scale (q_i[:HD/2].row[rj-ri+r] + q_i[HD/2:].col[cj-ci+r])
//     for a patch key, scale q_i.k_j for a class key;
//   class query: every key, logit scale q_i.k_j;
//   y_i = sum_j softmax_j(logit_ij) v_j,  scale = 1/sqrt(HD).
// Gradients for q, k, v, row and col. Equals SasaTerm's masked composition (nn/posenc.h).
Tensor local_attention_rel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& row, const Tensor& col,
                           int64_t H, int64_t W, int64_t K, int64_t skip);

}  // namespace pw
