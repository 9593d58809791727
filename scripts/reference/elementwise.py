"""Writes tests/fixtures/elementwise.json: PyTorch forward values and input
gradients for the elementwise and activation families (format: tests/reference.h).

Run with PyTorch 2.x (not a build dependency):
    /opt/torchenv/bin/python scripts/reference/elementwise.py
Inputs are float64 with a fixed seed; each case's upstream gradient is random.
The C++ side (tests/test_elementwise.cpp, tests/test_activation.cpp) must apply
the same function, with the same constants, to the case of the same name.
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def normal(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def positive(*shape):  # [0.5, 2): log, sqrt, rsqrt, pow, divisors
    return 0.5 + 1.5 * torch.rand(*shape, dtype=torch.float64)


def away(*shape):  # |x| in [0.2, 2] with a random sign: kinks at 0
    mag = 0.2 + 1.8 * torch.rand(*shape, dtype=torch.float64)
    return torch.where(torch.rand(*shape) < 0.5, -mag, mag)


def mask(*shape):  # i64 of 0 and 1 (and a few 2s: any nonzero is true)
    return torch.randint(0, 3, shape, dtype=torch.int64)


def enc(t):
    return {"shape": list(t.shape), "dtype": "i64" if t.dtype == torch.int64 else "f64",
            "data": [float(v) if t.dtype != torch.int64 else int(v) for v in t.reshape(-1).tolist()]}


cases = {}


def case(name, fn, *inputs):
    xs = [x.clone().requires_grad_(x.dtype == torch.float64) for x in inputs]
    y = fn(*xs)
    u = torch.randn_like(y)
    y.backward(u)
    cases[name] = {
        "inputs": [enc(x.detach()) for x in xs],
        "output": enc(y.detach()),
        "upstream": enc(u),
        "grads": [enc(x.grad) if x.grad is not None else None for x in xs],
    }


# --- binary, broadcasting ---
case("add_same", torch.add, normal(2, 3, 4), normal(2, 3, 4))
case("add_bcast", torch.add, normal(3, 1, 5), normal(4, 5))
case("add_both", torch.add, normal(5), normal(3, 1))
case("sub_bcast", torch.sub, normal(4, 5), normal(3, 1, 5))
case("mul_bcast", torch.mul, normal(3, 1, 5), normal(4, 5))
case("mul_inner", torch.mul, normal(2, 3, 1), normal(2, 3, 4))
case("mul_scalar_tensor", torch.mul, normal(2, 3, 4), normal(1))
case("div_bcast", torch.div, normal(3, 1, 5), positive(4, 5))
case("div_bcast_b", torch.div, normal(4, 5), positive(3, 1, 5))
# --- with a scalar ---
case("add_scalar", lambda x: x + 1.7, normal(3, 4))
case("mul_scalar", lambda x: x * -2.3, normal(3, 4))
case("sub_scalar", lambda x: x - 0.3, normal(3, 4))
case("rsub_scalar", lambda x: 1.3 - x, normal(3, 4))
case("div_scalar", lambda x: x / 1.7, normal(3, 4))
case("rdiv_scalar", lambda x: 2.1 / x, away(3, 4))
# --- unary ---
case("neg", torch.neg, normal(3, 4))
case("exp", torch.exp, normal(3, 4))
case("log", torch.log, positive(3, 4))
case("sqrt", torch.sqrt, positive(3, 4))
case("rsqrt", torch.rsqrt, positive(3, 4))
case("abs", torch.abs, away(3, 4))
case("pow3", lambda x: torch.pow(x, 3.0), normal(3, 4))
case("pow_frac", lambda x: torch.pow(x, 2.5), positive(3, 4))
case("pow_neg", lambda x: torch.pow(x, -1.5), positive(3, 4))
case("clamp", lambda x: torch.clamp(x, -0.5, 0.7), normal(4, 5))
# --- selection ---
case("where", lambda c, a, b: torch.where(c != 0, a, b), mask(3, 1, 5), normal(4, 5), normal(3, 4, 1))
case("where_f64_cond", lambda c, a, b: torch.where(c != 0, a, b),
     mask(4, 5).to(torch.float64), normal(4, 5), normal(5))
case("masked_fill", lambda x, m: x.masked_fill(m != 0, -1.5), normal(3, 4, 5), mask(4, 1))
# --- activations ---
case("relu", torch.relu, away(3, 4))
case("gelu", F.gelu, 2 * normal(3, 4))
case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), 2 * normal(3, 4))
case("silu", F.silu, 2 * normal(3, 4))
case("sigmoid", torch.sigmoid, 2 * normal(3, 4))
case("tanh", torch.tanh, 2 * normal(3, 4))
case("hardswish", F.hardswish, 3 * normal(4, 5))
case("glu_last", lambda x: F.glu(x, -1), normal(3, 4, 6))
case("glu_dim1", lambda x: F.glu(x, 1), normal(2, 6, 3))

out = ROOT / "tests" / "fixtures" / "elementwise.json"
out.write_text(json.dumps(cases, separators=(",", ":")) + "\n")
print(f"wrote {len(cases)} cases, {out.stat().st_size} bytes to {out}")
