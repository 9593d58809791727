#!/usr/bin/env python3
"""Loads a patchwork Swin-T checkpoint into timm's swin_tiny_patch4_window7_224 and
compares logits.

  check_timm_swin.py FILE [--atol A]

FILE is a safetensors file whose tensors are "param.<name>" (the model's state_dict,
timm's names: no name map), "input" (B,3,224,224) and "logits" (patchwork's output on
that input, eval mode). tests/test_zoo_win.cpp writes one by hand:

  cd build-nocuda && ./test_zoo_win --no-skip -tc='*timm*'    # swin_t_timm_check.safetensors
  /opt/torchenv/bin/python ../scripts/check_timm_swin.py swin_t_timm_check.safetensors

The parameters load with strict=True (no missing or unexpected keys; timm's
relative_position_index and attn_mask are non-persistent buffers, like patchwork's
constants), then timm's logits on "input" must match patchwork's. Not run by CI (needs
torch and timm: `/opt/torchenv/bin/pip install timm`).
"""
import argparse
import sys

import torch
from safetensors.torch import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--atol", type=float, default=1e-4)
    a = ap.parse_args()
    import timm

    t = load_file(a.file)
    sd = {k[len("param."):]: v for k, v in t.items() if k.startswith("param.")}
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    print(f"{len(sd)} tensors from {a.file}; missing {missing}, unexpected {unexpected}")
    if missing or unexpected:
        return 1
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        ref = model(t["input"].float()).double()
    ours = t["logits"].double()
    diff = (ref - ours).abs().max().item()
    scale = ref.abs().max().item()
    print(f"logits {tuple(ours.shape)}: max |timm - patchwork| = {diff:.3e} (max |logit| {scale:.3f}); "
          f"argmax equal: {torch.equal(ref.argmax(1), ours.argmax(1))}")
    if diff > a.atol:
        print(f"FAIL: difference above --atol {a.atol}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
