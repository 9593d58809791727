#!/usr/bin/env python3
"""CIFAR-10 binary files for a recipe: the first N records of each split, or a synthetic set.

    scripts/cifar_subset.py SRC DST N_TRAIN N_TEST       the first N records (0 = the whole split)
    scripts/cifar_subset.py --synthetic DST N_TRAIN N_TEST [--seed S]

SRC is the folder extracted from cifar-10-binary.tar.gz (data_batch_1..5.bin, test_batch.bin;
3073-byte records: the label byte, then 1024 red, 1024 green, 1024 blue pixels). DST gets the
same six files, the layout data.dataset: cifar10 reads: the N training records spread over
data_batch_1..5.bin in order (so N_TRAIN >= 5), the test records in test_batch.bin.

--synthetic writes records in that exact format whose pixels depend on the label (a class's
colour and a stripe orientation and frequency, plus noise): a learnable stand-in where
CIFAR-10 cannot be downloaded, for pipeline checks only; its accuracy says nothing about
CIFAR-10. Used by scripts/compare_pos_enc.sh --dataset cifar10 and its test."""
import math, os, random, sys

REC, PIX = 3073, 3072


def write_split(dst, records, train):
    if train:
        if len(records) < 5:
            sys.exit(f"cifar_subset.py: N_TRAIN is {len(records)}; the reader needs all five data_batch files, "
                     "so give at least 5 training records")
        k = len(records)
        for b in range(5):
            part = records[b * k // 5:(b + 1) * k // 5]
            with open(os.path.join(dst, f"data_batch_{b + 1}.bin"), "wb") as f:
                f.write(b"".join(part))
    else:
        if not records:
            sys.exit("cifar_subset.py: N_TEST is 0 records; give at least 1")
        with open(os.path.join(dst, "test_batch.bin"), "wb") as f:
            f.write(b"".join(records))


def read_records(paths, n):
    out = []
    for p in paths:
        if not os.path.isfile(p):
            sys.exit(f"cifar_subset.py: missing {p}; SRC must be the folder extracted from cifar-10-binary.tar.gz")
        b = open(p, "rb").read()
        if len(b) % REC:
            sys.exit(f"cifar_subset.py: {p} is {len(b)} bytes, not a multiple of the {REC}-byte record")
        out += [b[i:i + REC] for i in range(0, len(b), REC)]
        if n and len(out) >= n:
            return out[:n]
    return out


def synthetic(n, rng):
    recs = []
    for _ in range(n):
        y = rng.randrange(10)
        # class y: a base colour, stripes at angle y*18 degrees with frequency 1 + y%3
        colour = [(y * 53) % 256, (y * 97 + 40) % 256, (y * 151 + 80) % 256]
        ang = math.pi * y / 10.0
        freq = (1 + y % 3) * 2 * math.pi / 32.0
        ca, sa, ph = math.cos(ang), math.sin(ang), rng.uniform(0, 2 * math.pi)
        px = bytearray(PIX)
        for r in range(32):
            for c in range(32):
                s = 0.5 + 0.5 * math.sin(freq * (c * ca + r * sa) + ph)
                for ch in range(3):
                    v = colour[ch] * (0.4 + 0.6 * s) + rng.gauss(0, 25)
                    px[ch * 1024 + r * 32 + c] = max(0, min(255, int(v)))
        recs.append(bytes([y]) + bytes(px))
    return recs


def main(argv):
    if argv and argv[0] == "--synthetic":
        args = argv[1:]
        seed = 0
        if "--seed" in args:
            i = args.index("--seed")
            seed = int(args[i + 1])
            del args[i:i + 2]
        if len(args) != 3:
            sys.exit(__doc__)
        dst, ntr, nte = args[0], int(args[1]), int(args[2])
        rng = random.Random(seed)
        os.makedirs(dst, exist_ok=True)
        write_split(dst, synthetic(ntr, rng), True)
        write_split(dst, synthetic(nte, rng), False)
        return
    if len(argv) != 4:
        sys.exit(__doc__)
    src, dst, ntr, nte = argv[0], argv[1], int(argv[2]), int(argv[3])
    os.makedirs(dst, exist_ok=True)
    write_split(dst, read_records([os.path.join(src, f"data_batch_{b}.bin") for b in range(1, 6)], ntr), True)
    write_split(dst, read_records([os.path.join(src, "test_batch.bin")], nte), False)


if __name__ == "__main__":
    main(sys.argv[1:])
