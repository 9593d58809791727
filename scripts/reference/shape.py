"""Writes tests/fixtures/shape.json: PyTorch forward values and input gradients
for the shape and index ops (kernels/shape, kernels/index).

Run with the PyTorch env (not part of the build):
    /opt/torchenv/bin/python scripts/reference/shape.py
Each case: float64 inputs from a fixed seed, the op's output, a random upstream
gradient and dL/dx for every float input (null for index inputs). Ops returning
several tensors (split, chunk) get one case per checked piece.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "shape.json")


def enc(t):
    d = "i64" if t.dtype == torch.int64 else "f64"
    data = t.detach().reshape(-1).tolist()
    if d == "f64":
        data = [round(v, 15) for v in data]  # %.17g would double the file for no test value
    return {"shape": list(t.shape), "dtype": d, "data": data}


cases = {}


def case(name, inputs, fn):
    xs = [x.clone().requires_grad_(x.dtype == torch.float64) for x in inputs]
    # The C++ side reads the rounded inputs, so compute from exactly those.
    xs = [torch.tensor(enc(x)["data"], dtype=x.dtype).reshape(x.shape).requires_grad_(x.requires_grad)
          for x in xs]
    y = fn(*xs)
    u = torch.randn(y.shape, dtype=torch.float64)
    u = torch.tensor(enc(u)["data"], dtype=torch.float64).reshape(u.shape)
    y.backward(u)
    cases[name] = {
        "inputs": [enc(x) for x in xs],
        "output": enc(y),
        "upstream": enc(u),
        "grads": [enc(x.grad) if x.requires_grad else None for x in xs],
    }


r = lambda *s: torch.randn(*s, dtype=torch.float64)
ix = lambda hi, *s: torch.randint(0, hi, s, dtype=torch.int64)

# shape
case("permute_attn", [r(2, 3, 3, 2, 4)], lambda x: x.permute(2, 0, 3, 1, 4))  # (B,N,3,NH,HD)->(3,B,NH,N,HD)
case("permute_nhwc", [r(2, 3, 4, 5)], lambda x: x.permute(0, 2, 3, -3))
case("transpose", [r(3, 4, 5)], lambda x: x.transpose(0, -1))
case("concat", [r(2, 3, 4), r(2, 1, 4), r(2, 2, 4)], lambda a, b, c: torch.cat([a, b, c], 1))
case("concat_last", [r(3, 2), r(3, 5)], lambda a, b: torch.cat([a, b], -1))
case("split_1", [r(5, 3)], lambda x: torch.split(x, [2, 0, 3], 0)[1])
case("split_2", [r(5, 3)], lambda x: torch.split(x, [2, 0, 3], 0)[2])
case("chunk_0", [r(4, 7)], lambda x: torch.chunk(x, 3, -1)[0])
case("chunk_2", [r(4, 7)], lambda x: torch.chunk(x, 3, -1)[2])
case("narrow", [r(4, 6)], lambda x: x.narrow(1, -4, 3))
case("slice_step", [r(5, 7)], lambda x: x[:, -6:100:2])
case("slice_neg_end", [r(6, 3)], lambda x: x[1:-2])
case("pad", [r(2, 3, 4)], lambda x: F.pad(x, (1, 2, -1, 2), value=0.5))
case("pad_crop", [r(3, 5)], lambda x: F.pad(x, (-1, -2)))
case("roll", [r(3, 4, 5)], lambda x: torch.roll(x, (-1, 7), (0, 2)))
case("roll_flat", [r(3, 4)], lambda x: torch.roll(x, 5))
case("repeat", [r(2, 3)], lambda x: x.repeat(2, 1, 3))
case("expand", [r(3, 1, 5)], lambda x: x.expand(2, 3, 4, 5))
case("expand_keep", [r(3, 1)], lambda x: x.expand(2, -1, 4))
case("flatten", [r(2, 3, 4, 5)], lambda x: x.flatten(1, 2))
# index (repeated indices exercise the scatter-add)
case("embedding", [r(7, 3), torch.tensor([[4, 0, 4, 6], [1, 4, 6, 2]])], lambda w, i: F.embedding(i, w))
case("index_select", [r(3, 5, 2), torch.tensor([4, 0, 4, 2, 4])], lambda x, i: x.index_select(1, i))
case("index_select_0", [r(4, 3), torch.tensor([3, 3, 1])], lambda x, i: x.index_select(0, i))
case("gather", [r(3, 5, 4), ix(5, 2, 6, 3)], lambda x, i: torch.gather(x, 1, i))
case("gather_last", [r(4, 6), ix(6, 4, 9)], lambda x, i: torch.gather(x, -1, i))

with open(OUT, "w") as f:
    json.dump(cases, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")
