"""Writes tests/fixtures/audio.json: reference log-mel features for the audio
family's log_mel op (kernels/audio/audio.h, format: tests/reference.h).

Run with PyTorch 2.x (not a build dependency):
    /opt/torchenv/bin/python scripts/reference/audio.py
torchaudio is not installed in /opt/torchenv, so the reference is what
torchaudio.transforms.MelSpectrogram(power=2, center=True, pad_mode="reflect",
norm=None, mel_scale="htk") computes, spelled out: torch.stft with a periodic
Hann window, |.|^2, and melscale_fbanks reproduced below from torchaudio's
source (torchaudio/functional/functional.py, htk branch), then log(x + eps).
Inputs are float64 with a fixed seed. The C++ rows (tests/ops/audio.cpp) use
the same configurations under the same case names.
"""
import json
import math
import pathlib

import torch

torch.manual_seed(1234)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate):
    # torchaudio.functional.melscale_fbanks(norm=None, mel_scale="htk")
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)  # (n_freqs, n_mels)


def log_mel(wave, sample_rate=16000, n_fft=400, hop=160, n_mels=80, f_min=0.0, f_max=None, center=True, eps=1e-6):
    win = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    spec = torch.stft(wave, n_fft, hop_length=hop, win_length=n_fft, window=win, center=center, pad_mode="reflect",
                      normalized=False, onesided=True, return_complex=True)
    power = spec.abs() ** 2  # (B, K, T)
    fb = melscale_fbanks(n_fft // 2 + 1, f_min, f_max or sample_rate / 2.0, n_mels, sample_rate)
    mel = torch.matmul(power.transpose(-1, -2), fb).transpose(-1, -2)  # torchaudio MelScale
    return torch.log(mel + eps)


def enc(t):
    return {"shape": list(t.shape), "dtype": "f64", "data": [float(v) for v in t.reshape(-1).tolist()]}


cases = {}


def case(name, shape, **cfg):
    x = torch.randn(*shape, dtype=torch.float64)
    cases[name] = {"inputs": [enc(x)], "output": enc(log_mel(x, **cfg))}


case("log_mel_small", (2, 300), sample_rate=8000, n_fft=64, hop=16, n_mels=10)
case("log_mel_band", (2, 900), sample_rate=16000, n_fft=255, hop=100, n_mels=20, f_min=50.0, f_max=7000.0,
     center=False)
case("log_mel_default", (1, 1600))

out = ROOT / "tests" / "fixtures" / "audio.json"
out.write_text(json.dumps(cases, separators=(",", ":")) + "\n")
print("wrote", out)
