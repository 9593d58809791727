#!/usr/bin/env python3
"""Writes the first N images of each Fashion-MNIST split as IDX .gz files, the layout
data.dataset: fashion_mnist reads, so a recipe can train on a stated subset.

    scripts/fmnist_subset.py SRC DST N_TRAIN N_TEST     (0 = the whole split)

SRC holds the four *-ubyte.gz files (/usr/share/datasets/fashion-mnist from Debian's
dataset-fashion-mnist). Used by scripts/compare_pos_enc.sh and scripts/train_zoo.sh."""
import gzip, os, struct, sys

src, dst, ntr, nte = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dst, exist_ok=True)
for split, n in (("train", ntr), ("t10k", nte)):
    for kind, hdr in (("images-idx3", 16), ("labels-idx1", 8)):
        name = f"{split}-{kind}-ubyte.gz"
        b = gzip.open(os.path.join(src, name)).read()
        total = struct.unpack(">I", b[4:8])[0]
        k = total if n == 0 else min(n, total)
        per = 28 * 28 if kind.startswith("images") else 1
        out = b[:4] + struct.pack(">I", k) + b[8:hdr] + b[hdr:hdr + k * per]
        with gzip.open(os.path.join(dst, name), "wb") as f:
            f.write(out)
