// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): softmax
// attention's exp(q.k) replaced by a kernel phi(q).phi(k), so the attention of every
// query is phi(q_i)^T (phi(K)^T V) / phi(q_i)^T (phi(K)^T 1): O(N HD^2) per head
// instead of O(N^2 HD). CPU: fused per-head loops (linear_attention_cpu.cpp); CUDA:
// simple per-row and per-state-entry kernels (linear_attention_cuda.cu).
#pragma once
#include <cstdint>
#include <string>

#include "autograd/tensor.h"

namespace pw {

enum class LinearFeatureMap {
  Taylor,  // phi(x) = [1, x/|x|]: phi(q).phi(k) = 1 + q^.k^ (first-order Taylor of exp on L2-normalised q, k)
  Elu,     // phi(x) = elu(x) + 1
};
// "taylor" | "elu"; anything else throws naming both.
LinearFeatureMap linear_feature_map(const std::string& name);

// qkv: (B,N,3*NH*HD), read as (B,N,3,NH,HD) as attention_qkv does. y: (B,N,NH*HD),
//   y[b,i,h,:] = sum_j w_ij v_j / (sum_j w_ij + 1e-6),  w_ij = m_j phi(q_i).phi(k_j)
// per head h, over keys j <= i when causal, else all j. key_mask: (B,N) of qkv's dtype
// and device, m_j = key_mask[b,j] (1 a real token, 0 padding: a padded key gets no
// attention and changes no other token's output), or undefined (all 1). No gradient
// flows into key_mask. CUDA: HD <= 128.
Tensor linear_attention_qkv(const Tensor& qkv, int64_t heads, LinearFeatureMap fm, bool causal = false,
                            const Tensor& key_mask = Tensor());

}  // namespace pw
