#!/opt/torchenv/bin/python
"""Writes tests/fixtures/conv.json: PyTorch float64 forward and backward values of
conv2d, conv1d and unfold (format: tests/reference.h).
Run: /opt/torchenv/bin/python scripts/reference/conv.py"""
import json
import os

import torch

torch.manual_seed(4321)
F = torch.nn.functional


def enc(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": t.detach().reshape(-1).tolist()}


def case(fn, *shapes):
    xs = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]
    y = fn(*xs)
    u = torch.randn_like(y)
    y.backward(u)
    return {"inputs": [enc(x) for x in xs], "output": enc(y), "upstream": enc(u),
            "grads": [enc(x.grad) for x in xs]}


cases = {
    # the case names say the arguments; tests/test_conv.cpp repeats them in C++
    "conv2d_plain": case(lambda x, w, b: F.conv2d(x, w, b), (2, 3, 7, 6), (4, 3, 3, 3), (4,)),
    "conv2d_s2_p1_d2_g2": case(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
                               (2, 4, 9, 8), (6, 2, 3, 2), (6,)),
    "conv2d_depthwise_m2": case(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3),
                                (2, 3, 7, 7), (6, 1, 3, 3), (6,)),
    "conv2d_depthwise_s1": case(lambda x, w, b: F.conv2d(x, w, b, padding=(3, 1), dilation=(1, 2), groups=4),
                                (1, 4, 6, 7), (4, 1, 7, 3), (4,)),
    "conv2d_patch_nobias": case(lambda x, w: F.conv2d(x, w, stride=4), (2, 3, 8, 12), (5, 3, 4, 4)),
    "conv1d_s2_p1_d2_g2": case(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
                               (2, 4, 11), (6, 2, 3), (6,)),
    "unfold_k23_d21_p11_s22": case(lambda x: F.unfold(x, (2, 3), dilation=(2, 1), padding=(1, 1), stride=(2, 2)),
                                   (2, 3, 6, 7)),
    # the Conformer's convs (nn/conformer.h): depthwise conv1d with 'same' and causal
    # (left-only) padding, and the subsampling's 3x3 stride-2 convs on (B,C,F,T)
    "conv1d_depthwise_same_k7": case(lambda x, w, b: F.conv1d(x, w, b, padding=3, groups=4),
                                     (2, 4, 12), (4, 1, 7), (4,)),
    "conv1d_depthwise_causal_k5": case(lambda x, w, b: F.conv1d(F.pad(x, (4, 0)), w, b, groups=4),
                                       (2, 4, 10), (4, 1, 5), (4,)),
    "conv2d_subsampling_in": case(lambda x, w, b: F.conv2d(x, w, b, stride=2), (2, 1, 11, 13), (4, 1, 3, 3), (4,)),
    "conv2d_subsampling_mid": case(lambda x, w, b: F.conv2d(x, w, b, stride=2), (2, 4, 5, 6), (4, 4, 3, 3), (4,)),
}
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "conv.json")
with open(out, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(out))
