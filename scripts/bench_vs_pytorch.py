#!/usr/bin/env python3
"""Training throughput of patchwork's vision transformers rebuilt in PyTorch eager.

Builds the model a patchwork YAML config describes (model.type simple_vit or vit,
with the same defaults as nn/vit.cpp), trains it on one fixed synthetic batch
(no data loading) with AdamW and cross entropy with the config's label smoothing,
and prints images/s after warmup -- the same measurement as
`patchwork bench train CONFIG`. Run with /opt/torchenv/bin/python; not part of
the build or CI. scripts/bench_vs_pytorch.sh runs both side by side.

  bench_vs_pytorch.py CONFIG [--steps N] [--warmup W] [--repeat R] [--threads T] [--set k=v]...

Reports the median of R timed runs of N steps each.

Prints one machine-readable line at the end:
  RESULT images_per_s=<float> params=<int> ms_per_step=<float>
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The config defaults per model type (`patchwork keys --model simple_vit|vit`,
# from nn/vit.cpp's VitOptions).
DEFAULTS = {
    "simple_vit": dict(pool="mean", patch_embed="linear", pos_embed="sincos2d", qkv_bias=False, init="torch"),
    "vit": dict(pool="cls", patch_embed="conv", pos_embed="learned", qkv_bias=True, init="timm"),
}
COMMON = dict(image_size=28, patch_size=4, channels=1, num_classes=10, dim=192, depth=6, heads=3,
              dim_head=64, mlp_dim=768, dropout=0.0, emb_dropout=0.0, attn_dropout=0.0, drop_path=0.0)


def posemb_sincos_2d(h, w, dim, temperature=10000.0):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    omega = torch.arange(dim // 4) / (dim // 4 - 1)
    omega = 1.0 / (temperature ** omega)
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1).float()


class DropPath(nn.Module):
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
    def __init__(self, d, heads, dim_head, qkv_bias, attn_drop, proj_drop):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.qkv = nn.Linear(d, 3 * heads * dim_head, bias=qkv_bias)
        self.proj = nn.Linear(heads * dim_head, d)
        self.attn_drop, self.proj_drop = nn.Dropout(attn_drop), nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.dim_head ** -0.5) @ k.transpose(-2, -1)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(B, N, -1)
        return self.proj_drop(self.proj(out))


class FeedForward(nn.Module):
    def __init__(self, d, hidden, p):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, d, heads, dim_head, mlp, qkv_bias, p, attn_p, dp):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads, dim_head, qkv_bias, attn_p, p)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = FeedForward(d, mlp, p)
        self.drop_path = DropPath(dp)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    def __init__(self, o):
        super().__init__()
        self.o = o
        dh = o["dim_head"] or o["dim"] // o["heads"]
        side = o["image_size"] // o["patch_size"]
        n, d, p, c = side * side, o["dim"], o["patch_size"], o["channels"]
        if o["patch_embed"] == "linear":
            pd = c * p * p
            self.norm_in, self.proj, self.norm_out = nn.LayerNorm(pd), nn.Linear(pd, d), nn.LayerNorm(d)
        elif o["patch_embed"] == "conv":
            self.proj = nn.Conv2d(c, d, p, p)
        else:  # conv_stem, as nn/vit.cpp: log2(p) x (3x3 stride-2 conv -> BatchNorm -> ReLU), then 1x1
            k = p.bit_length() - 1
            layers, cin = [], c
            for i in range(k):
                cout = max(d >> (k - 1 - i), 8)
                layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
                cin = cout
            self.stem = nn.Sequential(*layers)
            self.proj = nn.Conv2d(cin, d, 1)
        cls = o["pool"] == "cls"
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cls else None
        if o["pos_embed"] == "learned":
            self.pos_embed = nn.Parameter(torch.randn(1, n + int(cls), d) * 0.02)
        elif o["pos_embed"] == "sincos2d":
            self.register_buffer("pos_embed", posemb_sincos_2d(side, side, d), persistent=False)
        else:
            self.pos_embed = None
        self.drop = nn.Dropout(o["emb_dropout"])
        depth = o["depth"]
        self.blocks = nn.ModuleList(
            Block(d, o["heads"], dh, o["mlp_dim"], o["qkv_bias"], o["dropout"], o["attn_dropout"],
                  o["drop_path"] * i / (depth - 1) if depth > 1 else o["drop_path"])
            for i in range(depth))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, o["num_classes"])
        for m in self.modules():  # model.init, as nn/layers.cpp's init_linears ("torch" keeps the default)
            if isinstance(m, nn.Linear) and o["init"] != "torch":
                if o["init"] == "timm":
                    nn.init.trunc_normal_(m.weight, std=0.02)
                else:
                    nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, img):
        o, p = self.o, self.o["patch_size"]
        B, C, H, W = img.shape
        if o["patch_embed"] == "linear":
            h, w = H // p, W // p  # b c (h p1) (w p2) -> b (h w) (p1 p2 c)
            x = img.reshape(B, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, p * p * C)
            x = self.norm_out(self.proj(self.norm_in(x)))
        elif o["patch_embed"] == "conv":
            x = self.proj(img).flatten(2).transpose(1, 2)
        else:
            x = self.proj(self.stem(img)).flatten(2).transpose(1, 2)
        learned = o["pos_embed"] == "learned"
        if self.pos_embed is not None and not learned:
            x = x + self.pos_embed
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        if learned:
            x = x + self.pos_embed
        x = self.drop(x)
        for b in self.blocks:
            x = b(x)
        x = self.norm(x)
        x = x[:, 0] if o["pool"] == "cls" else x.mean(dim=1)
        return self.head(x)


def parse_value(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    if v in ("true", "false"):
        return v == "true"
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def load_config(path):
    """The two-level `section:` / `  key: value` YAML that patchwork configs use
    (torchenv has no PyYAML; lists and nested maps are not needed here)."""
    cfg, sec = {}, None
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            key, _, val = line.strip().partition(":")
            if not line.startswith((" ", "\t")):
                sec = cfg.setdefault(key, {})
            elif sec is not None and val.strip():
                sec[key] = parse_value(val)
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="section.key=value")
    a = ap.parse_args()

    cfg = load_config(a.config)
    for s in a.set:
        key, val = s.split("=", 1)
        sec, k = key.split(".", 1)
        cfg.setdefault(sec, {})[k] = parse_value(val)
    m, t = cfg.get("model", {}), cfg.get("train", {})
    o = dict(COMMON)
    o.update(DEFAULTS[m.get("type", "vit")])
    o.update({k: v for k, v in m.items() if k != "type"})
    batch = int(t.get("batch_size", 128))
    ls = float(t.get("label_smoothing", 0.0))
    lr, wd = float(t.get("lr", 1e-3)), float(t.get("weight_decay", 0.05))

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = VisionTransformer(o).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos_embed" not in n and "cls_token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "pos_embed" not in n and "cls_token" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, foreach=True)
    nparams = sum(p.numel() for p in model.parameters())

    g = torch.Generator().manual_seed(1)
    img = torch.randn(batch, o["channels"], o["image_size"], o["image_size"], generator=g)
    labels = torch.randint(0, o["num_classes"], (batch,), generator=g)

    def step():
        logits = model(img)
        loss = F.cross_entropy(logits, labels, label_smoothing=ls)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    ips = []
    for r in range(a.repeat):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            loss = step()
        loss.item()
        dt = time.perf_counter() - t0
        ips.append(batch * a.steps / dt)
        print(f"run {r + 1}: {a.steps} steps in {dt:.3f} s: {1000 * dt / a.steps:.2f} ms/step, "
              f"{ips[-1]:.1f} images/s (loss {loss.item():.4f})", flush=True)
    med = statistics.median(ips)
    print(f"pytorch {torch.__version__}: {m.get('type', 'simple_vit')}, {nparams} parameters, batch {batch}, "
          f"{torch.get_num_threads()} threads: median {med:.1f} images/s, {1000 * batch / med:.2f} ms/step")
    print(f"RESULT images_per_s={med:.3f} params={nparams} ms_per_step={1000 * batch / med:.3f}")

if __name__ == "__main__":
    main()
