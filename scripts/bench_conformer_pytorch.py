#!/usr/bin/env python3
"""Conformer training throughput in PyTorch eager: the model `patchwork bench train` times
for a conformer config with rel_pos none (nn/conformer.h), rebuilt in PyTorch, trained on one
fixed synthetic batch (no data loading) with AdamW and label-smoothed cross entropy; prints
utterances/s after warmup, the median of --repeat runs of --steps steps. The blocks are
torchaudio's ConformerLayer math (FF/2, MHSA, conv module with BatchNorm1d, FF/2, LN), the
front ESPnet's Conv2dSubsampling, the head a mean over frames -> Linear.
Run with /opt/torchenv/bin/python; docs/speech.md has the side-by-side command.

  bench_conformer_pytorch.py [--dim 96 --depth 4 --heads 4 --ff-mult 4 --kernel 15]
                             [--batch 32 --mels 80 --frames 80 --classes 20] [--threads 2] [--compile]
(nn.MultiheadAttention runs PyTorch's fused scaled_dot_product_attention in training.)
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class FF(nn.Module):
    def __init__(self, d, h, p):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, h), nn.SiLU(), nn.Dropout(p), nn.Linear(h, d),
                                 nn.Dropout(p))

    def forward(self, x):
        return self.net(x)


class ConvModule(nn.Module):
    def __init__(self, d, k, p):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Linear(d, 2 * d)  # a 1x1 conv over channels, as patchwork computes it
        self.dw = nn.Conv1d(d, d, k, padding=(k - 1) // 2, groups=d)
        self.bn = nn.BatchNorm1d(d)
        self.pw2 = nn.Linear(d, d)
        self.drop = nn.Dropout(p)

    def forward(self, x):  # (B,N,D)
        h = F.glu(self.pw1(self.norm(x)), -1).transpose(1, 2)
        h = F.silu(self.bn(self.dw(h))).transpose(1, 2)
        return self.drop(self.pw2(h))


class Block(nn.Module):
    def __init__(self, d, heads, ffm, k, p):
        super().__init__()
        self.ff1, self.ff2 = FF(d, ffm * d, p), FF(d, ffm * d, p)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.attn_drop = nn.Dropout(p)
        self.conv = ConvModule(d, k, p)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        x = x + self.attn_drop(self.attn(h, h, h, need_weights=False)[0])
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class Conformer(nn.Module):
    def __init__(self, mels, d, depth, heads, ffm, k, classes, p):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, d, 3, 2), nn.Conv2d(d, d, 3, 2)
        self.out = nn.Linear(d * (((mels - 1) // 2 - 1) // 2), d)
        self.drop = nn.Dropout(p)
        self.blocks = nn.ModuleList(Block(d, heads, ffm, k, p) for _ in range(depth))
        self.head = nn.Linear(d, classes)

    def forward(self, x):  # (B,1,F,T)
        y = F.relu(self.conv2(F.relu(self.conv1(x))))
        B, C, Fq, T = y.shape
        x = self.drop(self.out(y.permute(0, 3, 1, 2).reshape(B, T, C * Fq)))
        for b in self.blocks:
            x = b(x)
        return self.head(x.mean(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in dict(dim=96, depth=4, heads=4, ff_mult=4, kernel=15, batch=32, mels=80, frames=80, classes=20,
                     threads=2, steps=10, warmup=3, repeat=3).items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor); warmup compiles")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Conformer(a.mels, a.dim, a.depth, a.heads, a.ff_mult, a.kernel, a.classes, a.dropout)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(a.batch, 1, a.mels, a.frames)
    y = torch.tensor([(i * 7 + 3) % a.classes for i in range(a.batch)])

    fwd = torch.compile(m) if a.compile else m

    def step():
        loss = F.cross_entropy(fwd(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    params = sum(p.numel() for p in m.parameters())
    print(f"pytorch {torch.__version__} {'torch.compile' if a.compile else 'eager'} conformer: {params} parameters, batch {a.batch} of 1x{a.mels}x{a.frames}, "
          f"{a.threads} threads")
    for _ in range(a.warmup):
        step()
    ups = []
    for r in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            loss = step()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        ups.append(a.batch * a.steps / dt)
        print(f"run {r + 1}: {a.steps} steps in {dt:.3f} s: {1000 * dt / a.steps:.2f} ms/step (cpu {1000 * cpu / a.steps:.2f} "
              f"ms/step), {ups[-1]:.1f} utterances/s (loss {loss.item():.4f})")
    print(f"RESULT utterances_per_s={statistics.median(ups):.2f} params={params}")


if __name__ == "__main__":
    main()
