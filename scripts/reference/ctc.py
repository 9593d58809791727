#!/usr/bin/env python3
"""Writes tests/fixtures/ctc.json: PyTorch reference values for ctc_loss (kernels/loss).

patchwork's ctc_loss is batch-first, log_probs (B,T,C), and returns the per-sample loss
(torch's reduction='none'); torch's F.ctc_loss takes (T,B,C). Each case stores the inputs
(scores (B,T,C) f64, targets (B,S), input_lengths, target_lengths as i64), the output, a
random upstream gradient and the scores' gradient, in the format of tests/reference.h.
Case names and the targets must match tests/ops/loss.cpp (ctc_inputs).

    /opt/torchenv/bin/python scripts/reference/ctc.py

NOTE: torch's CTC backward returns exp(lp) - occupancy for log_probs: the gradient through a
log_softmax, not w.r.t. log_probs themselves (patchwork's op gives the latter). The two agree
once a log_softmax precedes the loss, so the torch cases feed scores through F.log_softmax;
the "raw" case (scores straight into the loss) takes its values from ctc_autograd below, the
alpha recursion written with differentiable torch ops, checked against F.ctc_loss's values.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20261205)


def t2j(t, dtype="f64"):
    return {"shape": list(t.shape), "dtype": dtype, "data": t.detach().reshape(-1).tolist()}


def ctc_inputs(B, T, C, S):
    tg = torch.zeros(B, S, dtype=torch.int64)
    il = torch.tensor([T - b for b in range(B)], dtype=torch.int64)
    tl = torch.tensor([(S - b) % (S + 1) for b in range(B)], dtype=torch.int64)
    for b in range(B):
        for s in range(int(tl[b])):
            v = 1 + (7 * b + 3 * s) % (C - 1)
            if s == 1 and b % 2 == 0:
                v = int(tg[b, 0])
            tg[b, s] = v
    return torch.randn(B, T, C, dtype=torch.float64), tg, il, tl


def ctc_autograd(lp, tg, il, tl, blank=0):
    """CTC by its definition: the alpha recursion in log space with torch ops (differentiable)."""
    out = []
    neg = torch.tensor(-1e30, dtype=lp.dtype)  # unreachable; finite, so no NaN gradient from logsumexp
    for b in range(lp.shape[0]):
        lab = [blank]
        for s in range(int(tl[b])):
            lab += [int(tg[b, s]), blank]
        L, Tb = len(lab), int(il[b])
        alpha = [lp[b, 0, lab[0]]] + ([lp[b, 0, lab[1]]] if L > 1 else []) + [neg] * (L - 2 if L > 1 else 0)
        for t in range(1, Tb):
            new = []
            for s in range(L):
                terms = [alpha[s]]
                if s >= 1:
                    terms.append(alpha[s - 1])
                if s >= 2 and lab[s] != blank and lab[s] != lab[s - 2]:
                    terms.append(alpha[s - 2])
                new.append(torch.logsumexp(torch.stack(terms), 0) + lp[b, t, lab[s]])
            alpha = new
        end = torch.stack(alpha[-2:]) if L > 1 else torch.stack(alpha[-1:])
        out.append(-torch.logsumexp(end, 0))
    return torch.stack(out)


def case(fn, x, tg, il, tl):
    x = x.clone().requires_grad_(True)
    y = fn(x, tg, il, tl)
    u = torch.randn(y.shape, dtype=torch.float64)
    y.backward(u)
    return {"inputs": [t2j(x), t2j(tg, "i64"), t2j(il, "i64"), t2j(tl, "i64")], "output": t2j(y),
            "upstream": t2j(u), "grads": [t2j(x.grad), None, None, None]}


def torch_ctc(zero_infinity):
    def f(x, tg, il, tl):
        lp = F.log_softmax(x, -1).transpose(0, 1)  # (T,B,C)
        return F.ctc_loss(lp, tg, il, tl, blank=0, reduction="none", zero_infinity=zero_infinity)
    return f


cases = {
    "ctc_log_softmax": case(torch_ctc(False), *ctc_inputs(3, 7, 5, 3)),
    "ctc_raw": case(lambda x, tg, il, tl: ctc_autograd(x, tg, il, tl), *ctc_inputs(2, 6, 4, 2)),
    "ctc_zero_infinity": case(torch_ctc(True), *ctc_inputs(3, 4, 4, 3)),
}
# The raw recursion agrees with torch's loss values (not its log_probs gradient, see NOTE).
x, tg, il, tl = ctc_inputs(3, 7, 5, 3)
lp = F.log_softmax(x, -1)
assert torch.allclose(ctc_autograd(lp, tg, il, tl),
                      F.ctc_loss(lp.transpose(0, 1), tg, il, tl, reduction="none"), atol=1e-10)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "ctc.json")
with open(path, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(path), len(cases), "cases")
