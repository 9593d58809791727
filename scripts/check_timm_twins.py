#!/usr/bin/env python3
"""Loads patchwork's Twins weights into timm's models and compares the logits (issue 12).

tests/test_zoo_sra.cpp ("the ImageNet configs have the official implementations'
parameter counts"), run with PW_WRITE_TWINS_INTEROP=1, builds
configs/imagenet/twins_pcpvt_s.yaml and twins_svt_s.yaml, perturbs every parameter
(N(0, .02) noise, so zero biases and unit norms are tested too) and writes into its
working directory (the build folder):

  twins_pcpvt_s_interop.safetensors      the model's state_dict (patchwork names)
  twins_pcpvt_s_interop_io.safetensors   one 224x224 image ("input") and its logits
  twins_svt_s_interop.safetensors, twins_svt_s_interop_io.safetensors

This script loads each state_dict into timm's twins_pcpvt_small / twins_svt_small with
strict=True (no name map: patchwork names its parameters as timm does), reports missing
and unexpected keys, runs the image through timm in eval mode (float64 and float32) and
compares the logits. Exit status 1 on any missing/unexpected key or a logit mismatch.

Not part of the build; run by hand with the PyTorch environment (timm installed):
  cd build-nocuda && PW_WRITE_TWINS_INTEROP=1 ./test_zoo_sra -tc='*parameter counts*'
  /opt/torchenv/bin/python ../scripts/check_timm_twins.py [DIR]   # DIR: where the files are (default .)
"""
import os
import sys

import timm
import torch
from safetensors.torch import load_file

MODELS = {"twins_pcpvt_s": "twins_pcpvt_small", "twins_svt_s": "twins_svt_small"}


def check(dir_, ours, theirs):
    sd = load_file(os.path.join(dir_, f"{ours}_interop.safetensors"))
    io = load_file(os.path.join(dir_, f"{ours}_interop_io.safetensors"))
    model = timm.create_model(theirs, pretrained=False, num_classes=1000)
    res = model.load_state_dict(sd, strict=False)
    n_timm = sum(p.numel() for p in model.parameters())
    print(f"{ours} -> timm {theirs} (timm {timm.__version__}): {len(sd)} tensors, timm has {n_timm} parameters; "
          f"missing {list(res.missing_keys)}, unexpected {list(res.unexpected_keys)}")
    ok = not res.missing_keys and not res.unexpected_keys
    model.eval()
    x, want = io["input"], io["logits"]
    for dtype, tol in ((torch.float64, 2e-4), (torch.float32, 2e-4)):
        m = model.to(dtype)
        with torch.no_grad():
            got = m(x.to(dtype)).float()
        diff = (got - want).abs().max().item()
        scale = want.abs().max().item()
        top = (got.argmax(-1) == want.argmax(-1)).all().item()
        good = diff <= tol * max(1.0, scale)
        print(f"  {str(dtype):14s} max |logit diff| {diff:.3e} (max |logit| {scale:.3f}), same top-1: {top}: "
              f"{'OK' if good else 'MISMATCH'}")
        ok = ok and good and top
    return ok


def main():
    dir_ = sys.argv[1] if len(sys.argv) > 1 else "."
    ok = all([check(dir_, ours, theirs) for ours, theirs in MODELS.items()])
    print("all match" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
