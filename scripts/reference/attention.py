#!/usr/bin/env python3
"""Writes tests/fixtures/attention.json: PyTorch reference values for the fused
attention core (kernels/attention): attention_qkv(qkv, heads, scale), forward
and backward, built from torch's own ops exactly as timm's Attention does.

Inputs are float64 with a fixed seed; backward uses a random upstream gradient.
Case names and parameters must match tests/test_attention.cpp.

    /opt/torchenv/bin/python scripts/reference/attention.py
"""
import json
import os

import torch

torch.manual_seed(4242)


def t2j(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": t.detach().reshape(-1).tolist()}


def attention_qkv(qkv, heads, scale):
    B, N, C3 = qkv.shape
    hd = C3 // (3 * heads)
    q, k, v = qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
    p = ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    return (p @ v).transpose(1, 2).reshape(B, N, heads * hd)


def case(B, N, heads, hd, scale):
    qkv = (torch.randn(B, N, 3 * heads * hd, dtype=torch.float64) * 1.5).requires_grad_()
    y = attention_qkv(qkv, heads, scale)
    u = torch.randn(y.shape, dtype=torch.float64)
    y.backward(u)
    return {"inputs": [t2j(qkv)], "output": t2j(y), "upstream": t2j(u), "grads": [t2j(qkv.grad)]}


cases = {
    "b2_n5_h3_d4": case(2, 5, 3, 4, 0.5),
    "b3_n7_h1_d6": case(3, 7, 1, 6, 6 ** -0.5),
    "b1_n1_h2_d3": case(1, 1, 2, 3, 1.0),
}
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "attention.json")
with open(out, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(out))
