#!/usr/bin/env python3
"""Cross-checks patchwork's safetensors files against the reference reader.

  check_safetensors.py FILE...       open each FILE with the `safetensors`
                                     package (safe_open, framework="pt") and
                                     torch; print metadata and every tensor's
                                     name, dtype, shape and values; exit 1 on
                                     any failure.
  check_safetensors.py --interop FILE
                                     also assert the values that
                                     tests/test_safetensors.cpp writes into
                                     build/safetensors_interop.safetensors.
  check_safetensors.py --write-fixture [OUT]
                                     write tests/fixtures/torch_written.safetensors
                                     with torch (the file the C++ test reads).

Not part of the build: run with the PyTorch environment, e.g.
  /opt/torchenv/bin/python scripts/check_safetensors.py build/safetensors_interop.safetensors
(`pip install safetensors` into that environment if it is missing).
"""
import argparse
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def show(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        print(f"{path}: {len(list(f.keys()))} tensors, metadata {meta}")
        for name in f.keys():
            t = f.get_tensor(name)
            flat = t.flatten()
            vals = flat[:8].tolist()
            more = " ..." if flat.numel() > 8 else ""
            print(f"  {name!r}: {t.dtype} {list(t.shape)} {vals}{more}")
    # load_file goes through a second code path (whole-file deserialize).
    return load_file(path), meta


def check_interop(tensors, meta):
    assert meta.get("format") == "pt", meta
    assert meta.get("config") == "model:\n  depth: 6\n", meta
    want = {
        "w": torch.tensor([[0, 0.5, 1], [1.5, 2, 2.5]], dtype=torch.float32),
        "b": torch.tensor([-1, 1e-300, 3.25], dtype=torch.float64),
        "idx": torch.tensor([0, -1, 1 << 62], dtype=torch.int64),
        "scalar": torch.tensor(7, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        'odd\u00e9 "name"': torch.tensor([1, 2, 3, 4, 5], dtype=torch.float32),
    }
    assert set(tensors) == set(want), sorted(tensors)
    for name, w in want.items():
        t = tensors[name]
        assert t.dtype == w.dtype and t.shape == w.shape, (name, t.dtype, t.shape)
        assert torch.equal(t, w), (name, t, w)
    print("interop: all values match")


def write_fixture(out):
    # The C++ test checks these formulas; save_file orders tensors its own way
    # (by dtype alignment, then name), which also tests order independence.
    tensors = {
        "layer.weight": (torch.arange(15, dtype=torch.float32) * 0.25).reshape(3, 5),
        "double": torch.arange(7, dtype=torch.float64) * -1.5,
        "index": (torch.arange(6, dtype=torch.int64) * 1000000007).reshape(2, 3),
        "half": torch.arange(5, dtype=torch.float16),
        "bf16": torch.arange(3, dtype=torch.bfloat16),
        "scalar": torch.tensor(42.0, dtype=torch.float32),
    }
    save_file(tensors, out, metadata={"format": "pt", "writer": "torch"})
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--interop", action="store_true", help="assert the test's interop values")
    ap.add_argument("--write-fixture", nargs="?", const=os.path.join(REPO, "tests/fixtures/torch_written.safetensors"))
    args = ap.parse_args()
    if args.write_fixture:
        write_fixture(args.write_fixture)
    for path in args.files:
        tensors, meta = show(path)
        if args.interop:
            check_interop(tensors, meta)
    if not args.files and not args.write_fixture:
        ap.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
