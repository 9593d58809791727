#!/opt/torchenv/bin/python
"""Writes tests/fixtures/matmul.json: PyTorch float64 forward and backward values of
matmul and linear (format: tests/reference.h). Run: /opt/torchenv/bin/python scripts/reference/matmul.py"""
import json
import os

import torch

torch.manual_seed(1234)


def enc(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": t.detach().reshape(-1).tolist()}


def case(fn, *shapes):
    xs = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]
    y = fn(*xs)
    u = torch.randn_like(y)
    y.backward(u)
    return {"inputs": [enc(x) for x in xs], "output": enc(y), "upstream": enc(u),
            "grads": [enc(x.grad) for x in xs]}


F = torch.nn.functional
cases = {
    "matmul_broadcast": case(torch.matmul, (2, 1, 3, 4), (5, 4, 3)),
    "matmul_b2d": case(torch.matmul, (2, 3, 4), (4, 5)),
    "matmul_a2d": case(torch.matmul, (3, 4), (2, 4, 5)),
    "matmul_same_batch": case(torch.matmul, (3, 2, 5), (3, 5, 4)),
    "matmul_vec_mat": case(torch.matmul, (4,), (2, 4, 3)),
    "matmul_mat_vec": case(torch.matmul, (3, 4), (4,)),
    "linear_bias": case(F.linear, (2, 3, 4), (5, 4), (5,)),
    "linear_nobias": case(F.linear, (3, 4), (2, 4)),
}
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "matmul.json")
with open(out, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(out))
