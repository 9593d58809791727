#!/usr/bin/env python3
"""Writes tests/fixtures/linear_attention.json: PyTorch reference values for
linear attention (kernels/linear_attention): linear_attention_qkv(qkv, heads,
feature_map, causal, key_mask), forward and backward, computed directly in the
quadratic form (the N x N weights phi(Q) phi(K)^T, masked and normalised),
not the O(N d^2) factorisation the kernels use.

  taylor: phi(x) = [1, normalize(x)]   so phi(q).phi(k) = 1 + q^.k^
  elu:    phi(x) = elu(x) + 1
  y_i = sum_j w_ij v_j / (sum_j w_ij + 1e-6),  w_ij = m_j phi(q_i).phi(k_j), j <= i when causal

Inputs are float64 with a fixed seed; backward uses a random upstream gradient.
Case names and parameters must match tests/ops/linear_attention.cpp.

    /opt/torchenv/bin/python scripts/reference/linear_attention.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(5151)
EPS = 1e-6


def t2j(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": t.detach().reshape(-1).tolist()}


def phi(x, fm):
    if fm == "taylor":
        one = torch.ones(x.shape[:-1] + (1,), dtype=x.dtype)
        return torch.cat([one, F.normalize(x, dim=-1, eps=1e-12)], dim=-1)
    return F.elu(x) + 1


def linear_attention_qkv(qkv, heads, fm, causal, mask=None):
    B, N, C3 = qkv.shape
    hd = C3 // (3 * heads)
    q, k, v = qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)  # (B,NH,N,HD)
    w = phi(q, fm) @ phi(k, fm).transpose(-2, -1)  # (B,NH,N,N)
    if mask is not None:
        w = w * mask[:, None, None, :]
    if causal:
        w = w * torch.tril(torch.ones(N, N, dtype=w.dtype))
    y = (w @ v) / (w.sum(-1, keepdim=True) + EPS)
    return y.transpose(1, 2).reshape(B, N, heads * hd)


def key_mask(B, N):
    """The mask of tests/ops/linear_attention.cpp key_mask(B, N)."""
    m = torch.ones(B, N, dtype=torch.float64)
    for b in range(B):
        pad = min(max(1, (b + 1) * N // (B + 2)), N - 1)
        m[b, N - pad:] = 0
    return m


def case(B, N, heads, hd, fm, causal, masked=False):
    qkv = torch.randn(B, N, 3 * heads * hd, dtype=torch.float64).requires_grad_()
    mask = key_mask(B, N) if masked else None
    y = linear_attention_qkv(qkv, heads, fm, causal, mask)
    u = torch.randn(y.shape, dtype=torch.float64)
    y.backward(u)
    inputs = [t2j(qkv)] + ([t2j(mask)] if masked else [])
    grads = [t2j(qkv.grad)] + ([None] if masked else [])
    return {"inputs": inputs, "output": t2j(y), "upstream": t2j(u), "grads": grads}


cases = {
    "taylor_b2_n5_h2_d4": case(2, 5, 2, 4, "taylor", False),
    "elu_b2_n5_h2_d4": case(2, 5, 2, 4, "elu", False),
    "taylor_causal_b3_n7_h1_d5": case(3, 7, 1, 5, "taylor", True),
    "elu_causal_b2_n6_h3_d3": case(2, 6, 3, 3, "elu", True),
    "taylor_mask_b2_n6_h2_d4": case(2, 6, 2, 4, "taylor", False, True),
    "elu_causal_mask_b2_n6_h2_d4": case(2, 6, 2, 4, "elu", True, True),
}
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "linear_attention.json")
with open(out, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(out))
