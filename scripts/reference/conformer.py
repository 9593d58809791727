#!/usr/bin/env python3
"""Writes tests/fixtures/conformer_block.safetensors: one torchaudio ConformerLayer with
random weights (BatchNorm affine and running statistics included), its output for a random
input in train mode (batch statistics, dropout 0), the input and parameter gradients for a
random upstream gradient, the BatchNorm running statistics after that forward, and the
output in eval mode. tests/test_conformer.cpp loads the weights into patchwork's
ConformerBlock (nn/conformer.h) under its own names and compares.

torchaudio's Conformer is torchaudio/models/conformer.py, pure PyTorch. No torchaudio wheel
matches torch 2.15 in /opt/torchenv, so when `import torchaudio` fails the script loads that
one file from TORCHAUDIO_CONFORMER (the file of the torchaudio 2.11.1 wheel:
`pip download --no-deps torchaudio==2.11.1`, unzip torchaudio/models/conformer.py; it
imports only torch).

    TORCHAUDIO_CONFORMER=/tmp/ta/torchaudio/models/conformer.py /opt/torchenv/bin/python scripts/reference/conformer.py
"""
import importlib.util
import os

import torch
from safetensors.torch import save_file

try:
    from torchaudio.models.conformer import ConformerLayer
    SOURCE = "torchaudio"
except ImportError:
    path = os.environ["TORCHAUDIO_CONFORMER"]
    spec = importlib.util.spec_from_file_location("ta_conformer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ConformerLayer = mod.ConformerLayer
    SOURCE = "torchaudio 2.11.1 models/conformer.py"

torch.manual_seed(20261205)
D, FF, H, K, B, T = 16, 32, 2, 5, 2, 9

layer = ConformerLayer(input_dim=D, ffn_dim=FF, num_attention_heads=H, depthwise_conv_kernel_size=K, dropout=0.0)
layer = layer.double()
with torch.no_grad():
    for name, p in layer.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.2) + (1.0 if name.endswith("norm.weight") else 0.0))
    bn = layer.conv_module.sequential[3]
    bn.running_mean.copy_(torch.randn(D, dtype=torch.float64) * 0.1)
    bn.running_var.copy_(torch.rand(D, dtype=torch.float64) + 0.5)

# torchaudio name -> patchwork ConformerBlock name (and a reshape for the 1x1 convs).
MAP = {
    "ffn1.sequential.0": "ff1.norm", "ffn1.sequential.1": "ff1.fc1", "ffn1.sequential.4": "ff1.fc2",
    "ffn2.sequential.0": "ff2.norm", "ffn2.sequential.1": "ff2.fc1", "ffn2.sequential.4": "ff2.fc2",
    "self_attn_layer_norm": "attn_norm", "self_attn.out_proj": "attn.proj",
    "conv_module.layer_norm": "conv.norm", "conv_module.sequential.0": "conv.pw1",
    "conv_module.sequential.3": "conv.bn", "conv_module.sequential.5": "conv.pw2", "final_layer_norm": "norm",
}


def ours(name):
    if name == "self_attn.in_proj_weight":
        return "attn.qkv.weight"
    if name == "self_attn.in_proj_bias":
        return "attn.qkv.bias"
    if name == "conv_module.sequential.2.weight":
        return "conv.dw_weight"
    if name == "conv_module.sequential.2.bias":
        return "conv.dw_bias"
    mod, leaf = name.rsplit(".", 1)
    return MAP[mod] + "." + leaf


def f32(t):
    t = t.detach()
    if t.dim() == 3 and t.shape[-1] == 1:  # pointwise conv weight (O,I,1) -> Linear (O,I)
        t = t[..., 0]
    return t.to(torch.float32).contiguous()


out = {}
for n, p in layer.named_parameters():
    out["param." + ours(n)] = f32(p)
for n in ("running_mean", "running_var"):
    out["buffer.conv.bn." + n] = f32(getattr(layer.conv_module.sequential[3], n))

x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
layer.train()
y = layer(x.transpose(0, 1), None).transpose(0, 1)  # torchaudio is (T,B,D)
u = torch.randn_like(y)
y.backward(u)
out["input"] = f32(x)
out["output"] = f32(y)
out["upstream"] = f32(u)
out["grad_input"] = f32(x.grad)
for n, p in layer.named_parameters():
    out["grad." + ours(n)] = f32(p.grad)
for n in ("running_mean", "running_var"):
    out["buffer_after.conv.bn." + n] = f32(getattr(layer.conv_module.sequential[3], n))
layer.eval()
with torch.no_grad():
    out["eval_output"] = f32(layer(x.transpose(0, 1), None).transpose(0, 1))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "conformer_block.safetensors")
save_file(out, path, metadata={"source": SOURCE, "dims": f"D={D} ffn={FF} heads={H} kernel={K} B={B} T={T}"})
print("wrote", os.path.normpath(path), "from", SOURCE)
