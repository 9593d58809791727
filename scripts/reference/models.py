#!/usr/bin/env python3
"""Whole-model references for tests/test_models.cpp and tests/test_nn.cpp.

Re-implements patchwork's VisionTransformer (nn/vit.cpp) in PyTorch with
exactly our parameter names, builds a tiny instance of each configuration with
random weights from a fixed seed, and writes for each one
tests/fixtures/tiny_<name>.safetensors holding

    param.<name>   the weights (float32)              -> load_state_dict
    input, labels  a fixed batch (float32, int64)
    logits, loss   forward + cross_entropy(label_smoothing) (float64 math, stored float32)
    grad.<name>    dloss/dparam for every parameter   (float64 math, stored float32)
    adamw.<name>   the weights after one torch.optim.AdamW step from those gradients
                   (weight decay only on our decay=true parameters)

and in its __metadata__ the config as YAML ("config", read by the C++ test
through Config::parse): the model block and the AdamW settings (train.lr, ...). The reference math runs in
float64 from the float32 weights, so the fixture is the exact answer and the
C++ float32 run is compared with a tolerance.

It also writes tests/fixtures/posemb.safetensors: lucidrains' posemb_sincos_2d
(float32, verbatim from vit_pytorch/simple_vit.py) and the Transformer's 1D
sinusoidal table (float64) for a few sizes, and checks that the re-implementation
has 223530 parameters for configs/fashion_mnist/simple_vit.yaml.

    /opt/torchenv/bin/python scripts/reference/models.py
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


# --- lucidrains/vit-pytorch simple_vit.py, verbatim (einops-free) -------------
def posemb_sincos_2d(h, w, dim, temperature: int = 10000, dtype=torch.float32):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    assert (dim % 4) == 0, "feature dimension must be multiple of 4 for sincos emb"
    omega = torch.arange(dim // 4) / (dim // 4 - 1)
    omega = 1.0 / (temperature ** omega)

    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    pe = torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1)
    return pe.type(dtype)


# The Transformer's table (Vaswani et al. 2017), as in the PyTorch tutorial, in float64.
def posemb_sinusoidal_1d(n, dim, base=10000.0):
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    div = base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(n, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos / div)
    pe[:, 1::2] = torch.cos(pos / div)
    return pe


# --- our VisionTransformer, with our parameter names ---------------------------
class PatchEmbed(nn.Module):
    def __init__(self, kind, channels, patch, dim):
        super().__init__()
        self.kind, self.patch = kind, patch
        patch_dim = channels * patch * patch
        if kind == "linear":
            self.norm_in = nn.LayerNorm(patch_dim)
            self.proj = nn.Linear(patch_dim, dim)
            self.norm_out = nn.LayerNorm(dim)
        elif kind == "conv":
            self.proj = nn.Conv2d(channels, dim, patch, stride=patch)
        else:  # conv_stem: log2(patch) x (3x3 stride-2 conv, no bias -> BatchNorm -> ReLU), then a 1x1 conv
            n = patch.bit_length() - 1
            self.stem = nn.ModuleList()
            cin = channels
            for i in range(n):
                cout = max(dim >> (n - 1 - i), 8)
                layer = nn.Module()
                layer.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
                layer.bn = nn.BatchNorm2d(cout)
                self.stem.append(layer)
                cin = cout
            self.proj = nn.Conv2d(cin, dim, 1)

    def forward(self, img):
        B, C, H, W = img.shape
        p = self.patch
        h, w = H // p, W // p
        if self.kind == "linear":
            # Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')
            x = img.reshape(B, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, p * p * C)
            return self.norm_out(self.proj(self.norm_in(x)))
        y = img
        for layer in getattr(self, "stem", []):
            y = F.relu(layer.bn(layer.conv(y)))
        return self.proj(y).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, qkv_bias):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=qkv_bias)
        self.proj = nn.Linear(heads * dim_head, dim)

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        # PyTorch's own attention, not a transcription of ours.
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, self.heads * self.dim_head))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, dim_head, mlp_dim, qkv_bias):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """simple_vit: linear patches, sincos2d, mean pool, no qkv bias.
    vit: conv patches, cls token, learned pos_embed (cls included), qkv bias, cls pool."""

    def __init__(self, kind, image_size, patch_size, channels, num_classes, dim, depth, heads, dim_head, mlp_dim,
                 patch_embed=None):
        super().__init__()
        self.kind = kind
        side = image_size // patch_size
        simple = kind == "simple_vit"
        self.patch_embed = PatchEmbed(patch_embed or ("linear" if simple else "conv"), channels, patch_size, dim)
        if simple:
            self.register_buffer("pe", posemb_sincos_2d(side, side, dim), persistent=False)
        else:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, side * side + 1, dim))
        self.blocks = nn.ModuleList(
            [Block(dim, heads, dim_head or dim // heads, mlp_dim, qkv_bias=not simple) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, img):
        x = self.patch_embed(img)
        B = x.shape[0]
        if self.kind == "simple_vit":
            x = x + self.pe.to(x.dtype)
        else:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        x = self.norm(x)
        x = x.mean(dim=1) if self.kind == "simple_vit" else x[:, 0]
        return self.head(x)


def decays(name, p):
    # Ours (nn/layers.cpp, nn/vit.cpp): norms, biases, pos_embed and cls_token have decay=false.
    return p.ndim > 1 and name not in ("pos_embed", "cls_token")


def count(kind, **cfg):
    return sum(p.numel() for p in VisionTransformer(kind, **cfg).parameters())


# --- tiny instances ------------------------------------------------------------
TINY = {
    # channels 3, patch 2 (16 tokens, patch_dim 12); inner width NH*HD = 12 != dim
    "simple_vit": dict(kind="simple_vit", image_size=8, patch_size=2, channels=3, num_classes=5, dim=16, depth=2,
                       heads=2, dim_head=6, mlp_dim=24),
    # channels 3, patch 4 (4 tokens + cls)
    "vit": dict(kind="vit", image_size=8, patch_size=4, channels=3, num_classes=5, dim=16, depth=2, heads=2,
                dim_head=8, mlp_dim=24),
    # channels 1, patch 2 (16 tokens + cls), as on Fashion-MNIST
    "vit_c1": dict(kind="vit", image_size=8, patch_size=2, channels=1, num_classes=5, dim=16, depth=2, heads=2,
                   dim_head=8, mlp_dim=24),
    # channels 1, patch 4 through the conv stem (two 3x3 stride-2 convs with BatchNorm in train mode)
    "simple_vit_stem": dict(kind="simple_vit", image_size=8, patch_size=4, channels=1, num_classes=5, dim=16,
                            depth=2, heads=2, dim_head=8, mlp_dim=24, patch_embed="conv_stem"),
}
BATCH = 3
LABEL_SMOOTHING = 0.1
ADAMW = dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-8, weight_decay=0.05)  # eps: the trainer's fixed 1e-8


def config_yaml(c):
    keys = ["image_size", "patch_size", "channels", "num_classes", "dim", "depth", "heads", "dim_head", "mlp_dim"]
    lines = ["model:", f"  type: {c['kind']}"] + [f"  {k}: {c[k]}" for k in keys]
    if "patch_embed" in c:
        lines += [f"  patch_embed: {c['patch_embed']}"]
    if c["kind"] == "vit":
        lines += ["  dropout: 0.0", "  emb_dropout: 0.0"]
    lines += ["train:", f"  label_smoothing: {LABEL_SMOOTHING}", "  optimizer: adamw", f"  lr: {ADAMW['lr']!r}",
              f"  betas: [{ADAMW['betas'][0]!r}, {ADAMW['betas'][1]!r}]", f"  weight_decay: {ADAMW['weight_decay']!r}"]
    return "\n".join(lines) + "\n"


def make_fixture(name, c, seed):
    g = torch.Generator().manual_seed(seed)
    model = VisionTransformer(**c)
    # Random weights of unit-ish scale (never the zeros and ones of a fresh
    # init, which hide transposed or swapped parameters).
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bn.weight") or pname.endswith("norm_in.weight") or pname.endswith("norm_out.weight") or \
                    pname.endswith("norm1.weight") or pname.endswith("norm2.weight") or pname == "norm.weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim > 1 and pname not in ("pos_embed", "cls_token"):
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    x = torch.randn(BATCH, c["channels"], c["image_size"], c["image_size"], generator=g)
    labels = torch.randint(0, c["num_classes"], (BATCH,), generator=g)

    with torch.no_grad():  # BatchNorm running statistics that are not the fresh 0 and 1
        for bname, b in model.named_buffers():
            if bname.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif bname.endswith("running_var"):
                b.copy_(1 + 0.5 * torch.rand(b.shape, generator=g))
    buffers32 = {n: b.detach().clone() for n, b in model.named_buffers() if "running" in n}
    weights32 = {n: p.detach().clone() for n, p in model.named_parameters()}
    model = model.double()
    logits = model(x.double())
    loss = F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    named = dict(model.named_parameters())
    # NOTE: the key part of qkv.bias has an exactly zero gradient (softmax is
    # shift-invariant per row), and AdamW's first step is lr * g/(|g| + eps): the
    # C++ test therefore steps from these reference gradients, not its own
    # float32 ones, whose rounding noise there would flip the update.
    min_grad = min(p.grad.abs().min().item() for p in named.values())

    decay = [p for n, p in named.items() if decays(n, p)]
    no_decay = [p for n, p in named.items() if not decays(n, p)]
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=ADAMW["lr"],
                            betas=ADAMW["betas"], eps=ADAMW["eps"],
                            weight_decay=ADAMW["weight_decay"])
    opt.step()

    out = {"input": x, "labels": labels, "logits": logits.detach().float(), "loss": loss.detach().float().reshape(1)}
    for n, b in model.named_buffers():
        if "running" in n:  # BatchNorm: before and after the train-mode forward
            out["buffer." + n] = buffers32[n]
            out["buffer_after." + n] = b.detach().float()
    for n, p in named.items():
        out["param." + n] = weights32[n]
        out["grad." + n] = p.grad.float()
        out["adamw." + n] = p.detach().float()
    # One metadata key: the safetensors writer orders several at random.
    meta = {"config": config_yaml(c)}
    path = os.path.join(FIXTURES, f"tiny_{name}.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print(f"{path}: {len(named)} parameters ({sum(p.numel() for p in named.values())} values), "
          f"loss {loss.item():.6f}, min |grad| {min_grad:.2e}, {os.path.getsize(path)} bytes")


def main():
    torch.manual_seed(0)
    for k, (name, c) in enumerate(TINY.items()):
        make_fixture(name, c, seed=1234 + k)

    # The default configs' sizes (configs/fashion_mnist/*.yaml), counted in PyTorch.
    n_simple = count("simple_vit", image_size=28, patch_size=4, channels=1, num_classes=10, dim=64, depth=6,
                     heads=4, dim_head=16, mlp_dim=128, patch_embed="conv_stem")
    n_vit = count("vit", image_size=28, patch_size=4, channels=1, num_classes=10, dim=96, depth=6, heads=4,
                  dim_head=24, mlp_dim=192)
    # tests/test_nn.cpp checks num_parameters() against these two numbers.
    assert (n_simple, n_vit) == (223530, 456394), (n_simple, n_vit)
    print(f"fashion_mnist/simple_vit.yaml: {n_simple} parameters; fashion_mnist/vit.yaml: {n_vit}")

    pe = {}
    for h, w, d in [(7, 7, 64), (4, 4, 16), (2, 3, 8), (5, 2, 12)]:
        pe[f"sincos2d.{h}x{w}x{d}"] = posemb_sincos_2d(h, w, d)
    for n, d in [(10, 8), (50, 16), (3, 6)]:
        pe[f"sinusoidal1d.{n}x{d}"] = posemb_sinusoidal_1d(n, d)
    path = os.path.join(FIXTURES, "posemb.safetensors")
    save_file(pe, path)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
