#!/usr/bin/env python3
"""Writes tests/fixtures/reduce.json: PyTorch reference values for the reduce,
softmax and loss families (kernels/reduce, kernels/softmax, kernels/loss).

Each case runs one torch op in float64 on fixed-seed inputs, then backward with
a random upstream gradient, and stores inputs, output, upstream and grads in the
format of tests/reference.h. Case names and parameters must match the lambdas
in tests/test_reduce.cpp and tests/test_loss.cpp.

    /opt/torchenv/bin/python scripts/reference/reduce.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20240611)


def t2j(t, dtype="f64"):
    return {"shape": list(t.shape), "dtype": dtype, "data": t.detach().reshape(-1).tolist()}


def distinct(shape):
    """Well-separated values in random order: no max ties."""
    n = 1
    for s in shape:
        n *= s
    return ((torch.randperm(n, dtype=torch.float64) - n / 2) * 0.1 + 0.013).reshape(shape)


def case(fn, *inputs, grad=True):
    """inputs: float64 tensors (get requires_grad) or int64 tensors (labels)."""
    xs = [x.clone().requires_grad_(grad) if x.is_floating_point() else x for x in inputs]
    y = fn(*xs)
    out = {"inputs": [t2j(x, "f64" if x.is_floating_point() else "i64") for x in xs],
           "output": t2j(y, "f64" if y.is_floating_point() else "i64")}
    if grad and y.is_floating_point():
        u = torch.randn(y.shape, dtype=torch.float64)
        y.backward(u)
        out["upstream"] = t2j(u)
        out["grads"] = [t2j(x.grad) if x.is_floating_point() else None for x in xs]
    return out


def randn(*s):
    return torch.randn(*s, dtype=torch.float64)


x357 = randn(3, 5, 7)
cases = {
    # sum / mean / var
    "sum_all": case(lambda x: x.sum(), x357),
    "sum_d1": case(lambda x: x.sum(dim=[1]), x357),
    "sum_d0_2_keep": case(lambda x: x.sum(dim=[0, 2], keepdim=True), x357),
    "sum_dneg1": case(lambda x: x.sum(dim=[-1]), x357),
    "sum_d0_1": case(lambda x: x.sum(dim=[0, 1]), x357),
    "sum_4d_d1_3": case(lambda x: x.sum(dim=[1, 3]), randn(2, 3, 4, 5)),
    "mean_all": case(lambda x: x.mean(), x357),
    "mean_dneg2_keep": case(lambda x: x.mean(dim=[-2], keepdim=True), x357),
    "mean_d0_2": case(lambda x: x.mean(dim=[0, 2]), x357),
    "var_d1": case(lambda x: x.var(dim=[1]), x357),
    "var_d0_2_biased_keep": case(lambda x: x.var(dim=[0, 2], unbiased=False, keepdim=True), x357),
    "var_all": case(lambda x: x.var(dim=[0, 1, 2]), x357 + 100.0),  # large mean: tests cancellation
    "var_dneg1_biased": case(lambda x: x.var(dim=[-1], unbiased=False), x357),
    # max along a dim (values with gradient; indices forward only) and amax
    "max_d1": case(lambda x: x.max(dim=1).values, distinct((3, 5, 7))),
    "max_dneg1_keep": case(lambda x: x.max(dim=-1, keepdim=True).values, distinct((3, 5, 7))),
    "amax": case(lambda x: x.amax(), distinct((3, 5, 7))),
    # softmax family
    "softmax_dneg1": case(lambda x: F.softmax(x, dim=-1), x357),
    "softmax_d1": case(lambda x: F.softmax(x, dim=1), x357),
    "softmax_d0": case(lambda x: F.softmax(x, dim=0), x357),
    "softmax_large": case(lambda x: F.softmax(x, dim=-1), randn(4, 9) * 300.0),
    "log_softmax_dneg1": case(lambda x: F.log_softmax(x, dim=-1), x357),
    "log_softmax_d1": case(lambda x: F.log_softmax(x, dim=1), x357),
    "log_softmax_large": case(lambda x: F.log_softmax(x, dim=-1), randn(4, 9) * 300.0),
    # losses
    "cross_entropy": case(lambda x, t: F.cross_entropy(x, t), randn(6, 11), torch.randint(0, 11, (6,))),
    "cross_entropy_ls0.1": case(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), randn(6, 11),
                                torch.randint(0, 11, (6,))),
    "cross_entropy_ls0.3_large": case(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.3),
                                      randn(5, 7) * 500.0, torch.randint(0, 7, (5,))),
    "cross_entropy_soft": case(lambda x, q: torch.sum(-q * F.log_softmax(x, dim=-1), dim=-1).mean(),
                               randn(6, 11), F.softmax(randn(6, 11) * 2, dim=-1)),
}
# max indices, forward only
cases["max_d1_indices"] = {"inputs": cases["max_d1"]["inputs"],
                           "output": t2j(torch.tensor(cases["max_d1"]["inputs"][0]["data"], dtype=torch.float64)
                                         .reshape(3, 5, 7).max(dim=1).indices, "i64")}

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "reduce.json")
with open(path, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")
