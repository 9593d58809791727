#!/usr/bin/env python3
"""Writes tests/fixtures/pos_enc.json: PyTorch reference values for the ops of the
relative position encodings (kernels/posenc), forward and backward:

  rel_bias_gather     Swin's table[index].permute: table (T,NH), index (N,N) -> (NH,N,N)
  rel_logits_gather   torch.gather along the last dim: x (B,NH,N,T) -> (B,NH,N,N)
  rel_logits_scatter  scatter_add along the last dim (its transpose): p (B,NH,N,N) -> (B,NH,N,T)
  rope_qkv            RoPE-ViT's apply_rotary_emb (complex pairs) on q and k of a packed qkv
  rel_shift           Transformer-XL's _rel_shift trick (zero pad, view, drop a row, view),
                      bidirectional: x (B,NH,N,2N-1) -> (B,NH,N,N)

The index input is stored as index + 1 in [0, T] (0 = a pair with no term, -1 in
patchwork), as the test rows in tests/ops/posenc.cpp read it. Inputs are float64 with
a fixed seed; backward uses a random upstream gradient.

    /opt/torchenv/bin/python scripts/reference/pos_enc.py
"""
import json
import os

import torch

torch.manual_seed(2107)


def t2j(t, dtype="f64"):
    return {"shape": list(t.shape), "dtype": dtype, "data": t.detach().reshape(-1).tolist()}


def raw_index(N, T):
    return torch.randint(0, T + 1, (N, N))


def rel_bias_gather(table, raw):
    idx = raw - 1
    T, NH = table.shape
    padded = torch.cat([table, torch.zeros(1, NH, dtype=table.dtype)], 0)  # row T: no term
    g = padded[torch.where(idx < 0, T, idx).flatten()].view(*idx.shape, NH)
    return g.permute(2, 0, 1).contiguous()


def rel_logits_gather(x, raw):
    idx = raw - 1
    T = x.shape[-1]
    xp = torch.cat([x, torch.zeros(*x.shape[:-1], 1, dtype=x.dtype)], -1)
    ix = torch.where(idx < 0, T, idx).expand(*x.shape[:-1], idx.shape[-1])
    return torch.gather(xp, -1, ix)


def rel_logits_scatter(p, raw, T):
    idx = raw - 1
    out = torch.zeros(*p.shape[:-1], T + 1, dtype=p.dtype)
    ix = torch.where(idx < 0, T, idx).expand(*p.shape)
    return out.scatter_add(-1, ix, p)[..., :T]


def rope_qkv(qkv, cos, sin, heads):
    B, N, C3 = qkv.shape
    hd = C3 // (3 * heads)
    q, k, v = qkv.reshape(B, N, 3, heads, hd).unbind(2)
    f = torch.complex(cos, sin).view(1, N, 1, hd // 2)  # freqs_cis, the angles' unit vectors

    def rot(x):
        xc = torch.view_as_complex(x.reshape(B, N, heads, hd // 2, 2))
        return torch.view_as_real(xc * f).reshape(B, N, heads, hd)

    return torch.stack([rot(q), rot(k), v], 2).reshape(B, N, C3)


def rel_shift(x):
    *b, N, M = x.shape  # M = 2N-1: distances N-1 .. -(N-1)
    xp = torch.cat([torch.zeros(*b, N, 1, dtype=x.dtype), x], -1).view(*b, M + 1, N)
    return xp[..., 1:, :].reshape(*b, N, M)[..., :N]


def case(fn, inputs, grad_mask):
    xs = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad_mask)]
    y = fn(*xs)
    u = torch.randn(y.shape, dtype=torch.float64)
    y.backward(u)
    return {
        "inputs": [t2j(x, "i64" if x.dtype == torch.int64 else "f64") for x in inputs],
        "output": t2j(y),
        "upstream": t2j(u),
        "grads": [t2j(x.grad) if g else None for x, g in zip(xs, grad_mask)],
    }


def rnd(*s):
    return torch.randn(*s, dtype=torch.float64)


cases = {}
cases["rel_bias_gather"] = case(lambda t, i: rel_bias_gather(t, i), [rnd(9, 3), raw_index(5, 9)], [True, False])
cases["rel_logits_gather"] = case(lambda x, i: rel_logits_gather(x, i), [rnd(2, 3, 5, 9), raw_index(5, 9)],
                                  [True, False])
cases["rel_logits_scatter"] = case(lambda p, i: rel_logits_scatter(p, i, 9), [rnd(2, 3, 5, 5), raw_index(5, 9)],
                                   [True, False])
ang = rnd(5, 2) * 2
cases["rope_qkv"] = case(lambda x, c, s: rope_qkv(x, c, s, 3), [rnd(2, 5, 36), ang.cos(), ang.sin()],
                         [True, False, False])
cases["rel_shift"] = case(rel_shift, [rnd(2, 3, 5, 9)], [True])

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "pos_enc.json")
with open(out, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(out))
