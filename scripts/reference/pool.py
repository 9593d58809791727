#!/usr/bin/env python3
"""Writes tests/fixtures/pool.json: PyTorch reference values for the pool and
interp families (kernels/pool, kernels/interp).

Each case runs one torch op in float64 on a fixed-seed input, then backward with
a random upstream gradient, and stores inputs, output, upstream and grads in the
format of tests/reference.h. The case names and parameters must match the table
in tests/test_pool.cpp.

    /opt/torchenv/bin/python scripts/reference/pool.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)


def t2j(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": t.detach().reshape(-1).tolist()}


def case(fn, shape, distinct=False):
    if distinct:  # well-separated values so max ties cannot happen
        n = 1
        for s in shape:
            n *= s
        x = (torch.randperm(n, dtype=torch.float64) - n / 2) * 0.1 + 0.013
        x = x.reshape(shape)
    else:
        x = torch.randn(shape, dtype=torch.float64)
    x.requires_grad_(True)
    y = fn(x)
    u = torch.randn(y.shape, dtype=torch.float64)
    y.backward(u)
    return {"inputs": [t2j(x)], "output": t2j(y), "upstream": t2j(u), "grads": [t2j(x.grad)]}


def interp(mode, size, ac):
    return lambda x: F.interpolate(x, size=size, mode=mode, align_corners=ac)


cases = {
    # avg_pool2d(kernel, stride, padding, ceil_mode, count_include_pad)
    "avg2d_k3s2p1": case(lambda x: F.avg_pool2d(x, (3, 3), (2, 2), (1, 1)), (1, 2, 7, 9)),
    "avg2d_k3x2_s1x2_p1x0": case(lambda x: F.avg_pool2d(x, (3, 2), (1, 2), (1, 0)), (1, 2, 5, 7)),
    "avg2d_ceil": case(lambda x: F.avg_pool2d(x, (3, 3), (2, 2), (1, 1), ceil_mode=True), (1, 2, 6, 8)),
    "avg2d_ceil_nopadcount": case(
        lambda x: F.avg_pool2d(x, (3, 2), (2, 2), (1, 1), ceil_mode=True, count_include_pad=False),
        (2, 1, 6, 7)),
    "avg2d_nopadcount": case(
        lambda x: F.avg_pool2d(x, (3, 3), (2, 3), (1, 1), count_include_pad=False), (1, 2, 7, 8)),
    "avg2d_k2s2": case(lambda x: F.avg_pool2d(x, (2, 2), (2, 2)), (1, 2, 5, 7)),
    # avg_pool1d(kernel, stride, padding, ceil_mode, count_include_pad)
    "avg1d_k3s2p1": case(lambda x: F.avg_pool1d(x, 3, 2, 1), (2, 3, 11)),
    "avg1d_ceil_nopadcount": case(
        lambda x: F.avg_pool1d(x, 4, 3, 2, ceil_mode=True, count_include_pad=False), (2, 2, 10)),
    "global_avg": case(lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), (2, 3, 3, 5)),
    # max_pool2d(kernel, stride, padding, ceil_mode)
    "max2d_k3s2p1": case(lambda x: F.max_pool2d(x, (3, 3), (2, 2), (1, 1)), (2, 2, 7, 9), True),
    "max2d_k2s2_ceil": case(lambda x: F.max_pool2d(x, (2, 2), (2, 2), ceil_mode=True), (1, 2, 5, 7), True),
    "max2d_k3x2_s1_p1x0": case(lambda x: F.max_pool2d(x, (3, 2), (1, 1), (1, 0)), (1, 2, 5, 6), True),
}

# interpolate(size, align_corners): up, down, mixed, identity, 1x1 output, pos-embed-like.
resizes = [
    ("up", (2, 1, 4, 5), (7, 9)),
    ("down", (1, 1, 9, 11), (4, 5)),
    ("mixed", (1, 2, 5, 8), (9, 3)),
    ("same", (1, 1, 4, 5), (4, 5)),
    ("to1x1", (1, 2, 3, 4), (1, 1)),
    ("posembed", (1, 2, 5, 5), (8, 8)),
]
for mode in ("bilinear", "bicubic"):
    for name, shape, size in resizes:
        for ac in (False, True):
            cases[f"{mode}_{name}_ac{int(ac)}"] = case(interp(mode, size, ac), shape)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "pool.json")
with open(out, "w") as f:
    json.dump(cases, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {os.path.normpath(out)} ({os.path.getsize(out)} bytes)")
