#!/usr/bin/env python3
"""PyTorch's side of scripts/gpu_check.sh: the two GPU benchmarks patchwork is
compared with, in PyTorch eager with scaled_dot_product_attention (SDPA).

  vit   ViT-S/16 at 224x224 (timm vit_small_patch16_224 / configs/imagenet/vit_s16.yaml:
        dim 384, depth 12, 6 heads of 64, MLP 1536, cls token, learned positions,
        qkv bias, drop path 0.1, 1000 classes), written here in plain torch (no timm).
        One training step = bf16 autocast forward, cross entropy (label smoothing 0.1),
        backward, AdamW step, on one fixed random batch (no data loading), as
        `patchwork bench train` measures. Reports images/s: the median of --repeat
        timed windows of --steps steps after --warmup steps.
  attn  SDPA forward + backward on random (B,NH,N,HD) bf16 q, k, v (no mask, not causal),
        TFLOP/s under FlashAttention-2's convention: forward 4*B*NH*N^2*HD flops,
        backward 2.5x that, 14*B*NH*N^2*HD for both -- the same count
        `patchwork bench attention` uses. Once with PyTorch's default backend choice,
        then once per backend forced (flash, efficient, cudnn) where it runs.

Prints one machine-readable line per measurement:
  RESULT name=vit images_per_s=<f> ms_per_step=<f> params=<int> batch=<int> dtype=<s> device=<s>
  RESULT name=attn backend=<s> B=<int> NH=<int> N=<int> HD=<int> ms=<f> tflops=<f> fwd_tflops=<f>

  bench_gpu_pytorch.py [--only vit|attn] [--device cuda|cpu] [--tiny] [...]
--tiny shrinks everything (a 32x32 ViT, N=64) to check the script on a CPU.
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DropPath(nn.Module):
    """Stochastic depth per sample (timm's drop_path), identity when p == 0 or eval."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0 or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=True)
        self.proj = nn.Linear(heads * dim_head, dim)

    def forward(self, x):  # x: (B,N,D)
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v)  # (B,NH,N,HD)
        return self.proj(o.transpose(1, 2).reshape(B, N, -1))


class Block(nn.Module):
    def __init__(self, dim, heads, dim_head, mlp_dim, drop_path):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, dim_head)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_dim), nn.Linear(mlp_dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class ViT(nn.Module):
    """Pre-norm ViT with a conv patch embedding, cls token and learned positions (ViT-S/16 by default)."""

    def __init__(self, image_size=224, patch_size=16, channels=3, num_classes=1000, dim=384, depth=12, heads=6,
                 dim_head=64, mlp_dim=1536, drop_path=0.1):
        super().__init__()
        n = (image_size // patch_size) ** 2
        self.patch = nn.Conv2d(channels, dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, heads, dim_head, mlp_dim, drop_path * i / (depth - 1) if depth > 1 else drop_path)
            for i in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        for m in self.modules():  # timm's init
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, img):  # img: (B,C,S,S) -> logits (B,classes)
        x = self.patch(img).flatten(2).transpose(1, 2)  # (B,N,D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_vit(a, device):
    dims = dict(image_size=a.image_size, patch_size=a.patch_size, dim=a.dim, depth=a.depth, heads=a.heads,
                dim_head=a.dim_head, mlp_dim=a.mlp_dim, drop_path=a.drop_path, num_classes=a.num_classes)
    torch.manual_seed(0)
    model = ViT(**dims).to(device).train()
    params = sum(p.numel() for p in model.parameters())
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, **fused)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size, device=device)
    labels = torch.randint(0, a.num_classes, (a.batch,), device=device)
    dtype = {"bf16": torch.bfloat16, "fp32": None}[a.dtype]

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    sync(device)
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync(device)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    ips = a.batch * a.steps / t
    print(f"vit: {dims} batch {a.batch} {a.dtype}: {params} params, {ips:.1f} images/s, "
          f"{1000 * t / a.steps:.2f} ms/step (runs: {', '.join(f'{x:.3f}s' for x in times)})")
    print(f"RESULT name=vit images_per_s={ips:.2f} ms_per_step={1000 * t / a.steps:.3f} params={params} "
          f"batch={a.batch} dtype={a.dtype} device={device.type}", flush=True)


def backends():
    """(label, context manager factory) for the default choice and each forced SDPA backend."""
    import contextlib
    out = [("default", contextlib.nullcontext)]
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return out
    for name, attr in (("flash", "FLASH_ATTENTION"), ("efficient", "EFFICIENT_ATTENTION"),
                       ("cudnn", "CUDNN_ATTENTION")):
        if hasattr(SDPBackend, attr):
            out.append((name, lambda b=getattr(SDPBackend, attr): sdpa_kernel([b])))
    return out


def time_ms(fn, device, iters):
    """Median milliseconds of one fn() call: CUDA events on a GPU, the wall clock on a CPU."""
    ts = []
    for _ in range(iters):
        if device.type == "cuda":
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            e1.synchronize()
            ts.append(e0.elapsed_time(e1))
        else:
            t0 = time.perf_counter()
            fn()
            ts.append(1000 * (time.perf_counter() - t0))
    return statistics.median(ts)


def bench_attn(a, device):
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    N, HD, B = a.seq, a.head_dim, a.attn_batch
    for NH in a.attn_heads:
        torch.manual_seed(0)
        q, k, v = (torch.randn(B, NH, N, HD, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
        do = torch.randn(B, NH, N, HD, device=device, dtype=dtype)
        flops = 4.0 * B * NH * N * N * HD  # forward, FlashAttention-2 convention
        for label, ctx in backends():
            def fwd():
                return F.scaled_dot_product_attention(q, k, v)

            def fwd_bwd():
                q.grad = k.grad = v.grad = None
                fwd().backward(do)

            try:
                with ctx():
                    for _ in range(a.attn_warmup):
                        fwd_bwd()
                    sync(device)
                    ms = time_ms(fwd_bwd, device, a.attn_iters)
                    with torch.no_grad():
                        ms_f = time_ms(fwd, device, a.attn_iters)
            except Exception as e:  # a forced backend that cannot run this shape/dtype/device
                print(f"attn: backend {label}: not available here ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
                continue
            tf, tf_f = 3.5 * flops / ms / 1e9, flops / ms_f / 1e9
            print(f"attn: {label:9s} B={B} NH={NH} N={N} HD={HD} {a.dtype}: fwd+bwd {ms:.3f} ms = {tf:.1f} TFLOP/s, "
                  f"fwd {ms_f:.3f} ms = {tf_f:.1f} TFLOP/s")
            print(f"RESULT name=attn backend={label} B={B} NH={NH} N={N} HD={HD} ms={ms:.4f} tflops={tf:.2f} "
                  f"fwd_tflops={tf_f:.2f}", flush=True)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["vit", "attn"], help="run one of the two benchmarks (default: both)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, to check the script on a CPU")
    v = ap.add_argument_group("ViT training")
    v.add_argument("--batch", type=int, default=128)
    v.add_argument("--steps", type=int, default=20)
    v.add_argument("--warmup", type=int, default=5)
    v.add_argument("--repeat", type=int, default=3)
    v.add_argument("--image-size", type=int, default=224)
    v.add_argument("--patch-size", type=int, default=16)
    v.add_argument("--dim", type=int, default=384)
    v.add_argument("--depth", type=int, default=12)
    v.add_argument("--heads", type=int, default=6)
    v.add_argument("--dim-head", type=int, default=64)
    v.add_argument("--mlp-dim", type=int, default=1536)
    v.add_argument("--num-classes", type=int, default=1000)
    v.add_argument("--drop-path", type=float, default=0.1)
    t = ap.add_argument_group("attention")
    t.add_argument("--attn-batch", type=int, default=8)
    t.add_argument("--attn-heads", type=lambda s: [int(x) for x in s.split(",")], default=[6, 12],
                   help="comma-separated head counts, one measurement each (default 6,12)")
    t.add_argument("--seq", type=int, default=1024)
    t.add_argument("--head-dim", type=int, default=64)
    t.add_argument("--attn-iters", type=int, default=30)
    t.add_argument("--attn-warmup", type=int, default=5)
    a = ap.parse_args(argv)
    if a.tiny:
        a.batch, a.steps, a.warmup, a.repeat = 4, 2, 1, 1
        a.image_size, a.patch_size, a.dim, a.depth, a.heads, a.dim_head, a.mlp_dim = 32, 8, 32, 2, 2, 16, 64
        a.num_classes = 10
        a.attn_batch, a.attn_heads, a.seq, a.head_dim, a.attn_iters, a.attn_warmup = 1, [2], 64, 16, 2, 1
    return a


def main():
    a = parse()
    device = torch.device(a.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("bench_gpu_pytorch: torch sees no CUDA device (use --device cpu --tiny to check the script)")
        p = torch.cuda.get_device_properties(device)
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
              f"{p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB")
    else:
        print(f"torch {torch.__version__} on {device}")
    if a.only in (None, "vit"):
        bench_vit(a, device)
    if a.only in (None, "attn"):
        bench_attn(a, device)


if __name__ == "__main__":
    main()
