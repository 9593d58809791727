#!/usr/bin/env python3
"""Writes tests/fixtures/norm.json: PyTorch reference values for the norm
family (kernels/norm): layer_norm and batch_norm, forward and backward, and
batch_norm's running-statistics update.

Inputs are float64 with a fixed seed; backward uses a random upstream gradient.
Case names and parameters must match the lambdas in tests/test_norm.cpp.
batch_norm inputs are [x, weight, bias, running_mean, running_var].

    /opt/torchenv/bin/python scripts/reference/norm.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(777)


def t2j(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": t.detach().reshape(-1).tolist()}


def randn(*s):
    return torch.randn(*s, dtype=torch.float64)


def case(fn, inputs, grad_mask):
    xs = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad_mask)]
    y = fn(*xs)
    u = torch.randn(y.shape, dtype=torch.float64)
    y.backward(u)
    return {"inputs": [t2j(x) for x in xs], "output": t2j(y), "upstream": t2j(u),
            "grads": [t2j(x.grad) if g else None for x, g in zip(xs, grad_mask)]}


def ln_case(shape, affine, eps=1e-5, shift=0.0):
    C = shape[-1]
    x = randn(*shape) * 2 + shift
    if affine:
        return case(lambda x, w, b: F.layer_norm(x, (C,), w, b, eps), [x, randn(C), randn(C)], [True] * 3)
    return case(lambda x: F.layer_norm(x, (C,), None, None, eps), [x], [True])


def bn_case(shape, training, momentum=0.1, eps=1e-5):
    C = shape[1]
    x = randn(*shape) * 1.5 + 0.7
    rm, rv = randn(C) * 0.3, torch.rand(C, dtype=torch.float64) + 0.5
    c = case(lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training, momentum, eps),
             [x, randn(C), randn(C), rm, rv], [True, True, True, False, False])
    return c


def bn_running(shape, momentum):
    """Output = concat(running_mean, running_var) after one training step."""
    C = shape[1]
    x = randn(*shape) * 1.5 + 0.7
    rm, rv = randn(C) * 0.3, torch.rand(C, dtype=torch.float64) + 0.5
    ins = [x, randn(C), randn(C), rm.clone(), rv.clone()]
    F.batch_norm(x, rm, rv, ins[1], ins[2], True, momentum, 1e-5)
    return {"inputs": [t2j(t) for t in ins], "output": t2j(torch.cat([rm, rv]))}


cases = {
    "layer_norm_affine": ln_case((2, 3, 7), True),
    "layer_norm_plain": ln_case((5, 9), False),
    "layer_norm_shifted": ln_case((3, 11), True, shift=1000.0),
    "layer_norm_eps0.1": ln_case((4, 5), True, eps=0.1),
    "batch_norm_train_2d": bn_case((5, 3), True),
    "batch_norm_train_3d": bn_case((4, 3, 5), True),
    "batch_norm_train_4d": bn_case((2, 3, 3, 4), True),
    "batch_norm_eval_4d": bn_case((2, 3, 3, 4), False),
    "batch_norm_eval_2d": bn_case((5, 3), False),
    "batch_norm_running_4d": bn_running((2, 3, 3, 4), 0.1),
    "batch_norm_running_3d_m0.3": bn_running((4, 3, 5), 0.3),
}

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "norm.json")
with open(path, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")
