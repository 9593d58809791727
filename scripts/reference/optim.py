#!/usr/bin/env python3
"""Writes tests/fixtures/optim.safetensors: torch.optim.AdamW and torch.optim.SGD
trajectories and torch.nn.utils.clip_grad_norm_ results, float64, for
tests/test_optim.cpp (trainers/optim.h).

Three parameters, "w" (3,5) and "k" (2,3,2) with weight decay and "b" (5) without
(our decay=false; in PyTorch a second group with weight_decay 0), take STEPS
steps from fixed gradient sequences at a changing learning rate.

    init.<p>                  the starting values
    grad.<t>.<p>              the gradient fed at step t (0-based)
    lr                        (STEPS) the learning rate of each step
    <case>.<t>.<p>            the parameter after step t
    <case>.<state>.<p>        the optimizer state after the last step
                              (exp_avg, exp_avg_sq, momentum_buffer)
    clip.<max_norm>.<p>       grad.0 after clip_grad_norm_(max_norm)
    clip.<max_norm>.norm      (1) the norm clip_grad_norm_ returned

Cases (hyperparameters must match the table in tests/test_optim.cpp):
    adamw          betas (0.8, 0.95), eps 1e-8, weight_decay 0.1
    adamw_skip     the same, but "k" has no gradient at step 1
    sgd            momentum 0.9, weight_decay 0.01
    sgd_nesterov   momentum 0.9, weight_decay 0.01, nesterov
    sgd_plain      momentum 0,   weight_decay 0.01
    sgd_skip       as sgd, but "k" has no gradient at step 1

    /opt/torchenv/bin/python scripts/reference/optim.py
"""
import os

import torch
from safetensors.torch import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
STEPS = 4
SHAPES = {"w": (3, 5), "b": (5,), "k": (2, 3, 2)}
DECAY = {"w": True, "b": False, "k": True}
LR = [1e-2, 8e-3, 5e-3, 3e-3]
SKIP = ("k", 1)  # (parameter, step) without a gradient in the *_skip cases

CASES = {
    "adamw": ("adamw", dict(betas=(0.8, 0.95), eps=1e-8, weight_decay=0.1), False),
    "adamw_skip": ("adamw", dict(betas=(0.8, 0.95), eps=1e-8, weight_decay=0.1), True),
    "sgd": ("sgd", dict(momentum=0.9, weight_decay=0.01), False),
    "sgd_nesterov": ("sgd", dict(momentum=0.9, weight_decay=0.01, nesterov=True), False),
    "sgd_plain": ("sgd", dict(momentum=0.0, weight_decay=0.01), False),
    "sgd_skip": ("sgd", dict(momentum=0.9, weight_decay=0.01), True),
}


def main():
    g = torch.Generator().manual_seed(2024)
    init = {n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in SHAPES.items()}
    grads = [{n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in SHAPES.items()} for _ in range(STEPS)]
    out = {"lr": torch.tensor(LR, dtype=torch.float64)}
    for n in SHAPES:
        out["init." + n] = init[n]
        for t in range(STEPS):
            out[f"grad.{t}.{n}"] = grads[t][n]

    for case, (kind, hp, skip) in CASES.items():
        ps = {n: init[n].clone().requires_grad_() for n in SHAPES}
        decay = [ps[n] for n in SHAPES if DECAY[n]]
        no_decay = [ps[n] for n in SHAPES if not DECAY[n]]
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=LR[0], **hp) if kind == "adamw" else torch.optim.SGD(groups, lr=LR[0], **hp)
        for t in range(STEPS):
            for n, p in ps.items():
                p.grad = None if skip and (n, t) == SKIP else grads[t][n].clone()
            for group in opt.param_groups:
                group["lr"] = LR[t]
            opt.step()
            for n, p in ps.items():
                out[f"{case}.{t}.{n}"] = p.detach().clone()
        for n, p in ps.items():
            for key, v in opt.state[p].items():
                if key != "step":
                    out[f"{case}.{key}.{n}"] = v.clone()

    for max_norm in (0.5, 100.0):
        ps = [init[n].clone().requires_grad_() for n in SHAPES]
        for p, n in zip(ps, SHAPES):
            p.grad = grads[0][n].clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        out[f"clip.{max_norm:g}.norm"] = norm.reshape(1).double()
        for p, n in zip(ps, SHAPES):
            out[f"clip.{max_norm:g}.{n}"] = p.grad.clone()

    path = os.path.join(ROOT, "tests", "fixtures", "optim.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    print(f"{path}: {len(out)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
