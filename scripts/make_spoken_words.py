#!/usr/bin/env python3
"""Generates a spoken-word data set with espeak-ng, in the Speech Commands layout.

    scripts/make_spoken_words.py OUT [--speakers 60] [--ctc 3000] [--jobs 2] [--seed 0]

Writes
    OUT/kws/<word>/<speaker>_nohash_0.wav   1 s, 16 kHz, mono, 16-bit PCM
    OUT/kws/validation_list.txt             clips of the validation speakers
    OUT/kws/testing_list.txt                clips of the test speakers
    OUT/ctc/clips/<speaker>_<k>.wav         2-4 digit utterances ("three one four"), 16 kHz
    OUT/ctc/vocabulary.txt                  the 20 words, one a line (id = line number; 0 = CTC blank)
    OUT/ctc/{train,validation,test}.tsv     "<clip>\t<transcript>" (split by speaker as above)
    OUT/README.txt                          how it was made (this command and its settings)

Words: the ten digits and yes no up down left right on off stop go. A speaker is
an espeak-ng English accent (en-us, en-gb, ...) with a voice variant (+f2, +m3,
+klatt, ...), a speed and a pitch; its clips get random gain, a random position
in the 1 s window and white noise at a random SNR. Speakers whose variant is in
TEST_VARIANTS (VAL_VARIANTS) are only in testing_list.txt (validation_list.txt),
so evaluation hears voices never heard in training. Everything is a function of
--seed (espeak-ng's output is deterministic for a given version).

espeak-ng writes 22050 Hz; the clips are resampled to 16 kHz with the windowed-
sinc (Hann) interpolation of torchaudio.functional.resample (lowpass filter
width 6, rolloff 0.99), the same algorithm as data/wav.cpp's resample().
Only the Python standard library and the espeak-ng program are needed
(scripts/install_deps.sh installs espeak-ng).
"""
import argparse
import math
import multiprocessing
import operator
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import wave

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
DIGITS = WORDS[:10]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc"]
TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3",
                  "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb", "david", "ed",
                  "edward", "Gene", "Henrique", "Hugo", "iven", "Jacky", "john", "Lee", "linda", "max",
                  "Michael", "Mike", "norbert", "paul", "pedro", "quincy", "rob", "robert", "steph", "travis",
                  "victor", "zac", "croak", "grandpa"]
VAL_VARIANTS = ["m8", "f5", "klatt4", "shelby", "sandro", "Storm"]
TEST_VARIANTS = ["f4", "m6", "klatt5", "anika", "grandma", "Mario", "boris", "michel"]
TRAIN_VARIANTS = [v for v in TRAIN_VARIANTS if v not in VAL_VARIANTS + TEST_VARIANTS]

RATE = 16000


# --- resampling: torchaudio.functional.resample, sinc_interp_hann ---
def sinc_kernels(orig, new, lowpass_filter_width=6, rolloff=0.99):
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    kernels = []
    for i in range(new):
        k = []
        for j in range(2 * width + orig):
            t = (-i / new + (j - width) / orig) * base
            t = max(-lowpass_filter_width, min(lowpass_filter_width, t))
            w = math.cos(t * math.pi / lowpass_filter_width / 2) ** 2
            t *= math.pi
            k.append((1.0 if t == 0 else math.sin(t) / t) * w * base / orig)
        # Only taps with |t| < width are inside the window (outside, cos^2(pi/2) ~ 1e-33): keep those.
        nz = [j for j in range(len(k)) if abs((-i / new + (j - width) / orig) * base) < lowpass_filter_width] or [0]
        kernels.append((nz[0], k[nz[0]:nz[-1] + 1]))
    return orig, new, width, kernels


_KERNELS = {}


def resample(x, orig, new):
    if orig == new:
        return list(x)
    if (orig, new) not in _KERNELS:
        _KERNELS[(orig, new)] = sinc_kernels(orig, new)
    o, n, width, kernels = _KERNELS[(orig, new)]
    padded = [0.0] * width + list(x) + [0.0] * (width + o)
    out_len = -(-n * len(x) // o)
    y = []
    mul = operator.mul
    for f in range(-(-out_len // n)):
        for first, k in kernels:
            s = f * o + first
            y.append(sum(map(mul, k, padded[s:s + len(k)])))
    return y[:out_len]


# --- synthesis ---
def espeak(text, voice, speed, pitch, tmpdir):
    path = os.path.join(tmpdir, "x.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, text], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "espeak-ng wrote an unexpected format"
        rate, raw = w.getframerate(), w.readframes(w.getnframes())
    x = [v / 32768.0 for v in struct.unpack("<%dh" % (len(raw) // 2), raw)]
    return x, rate


def trim_silence(x, thresh=0.01):
    idx = [i for i in range(0, len(x), 64) if abs(x[i]) > thresh]
    if not idx:
        return x
    return x[max(0, idx[0] - 320):min(len(x), idx[-1] + 320)]


def finish(x, rng, length=None):
    """Gain, placement in a `length`-sample window (None: 0.1-0.3 s margins), white noise, 16-bit."""
    gain = rng.uniform(0.3, 0.9) / max(1e-6, max(abs(v) for v in x))
    x = [v * gain for v in x]
    if length is None:
        pre, post = int(rng.uniform(0.1, 0.3) * RATE), int(rng.uniform(0.1, 0.3) * RATE)
        x = [0.0] * pre + x + [0.0] * post
    else:
        x = x[:length]
        pre = rng.randint(0, length - len(x))
        x = [0.0] * pre + x + [0.0] * (length - len(x) - pre)
    power = sum(v * v for v in x) / len(x)
    snr_db = rng.uniform(5, 30)
    sigma = math.sqrt(power / (10 ** (snr_db / 10)))
    return [max(-32768, min(32767, int(round((v + rng.gauss(0, sigma)) * 32767)))) for v in x]


def write16(path, samples):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack("<%dh" % len(samples), *samples))


def job(args):
    kind, out, speaker, voice, speed, pitch, text, name, seed = args
    rng = random.Random("%s/%s/%d" % (kind, name, seed))
    with tempfile.TemporaryDirectory() as tmp:
        x, rate = espeak(text, voice, speed, pitch, tmp)
    x = trim_silence(resample(x, rate, RATE))
    y = finish(x, rng, RATE if kind == "kws" else None)
    write16(os.path.join(out, name), y)
    return kind, name, speaker, text


def speakers(n, rng):
    """n speakers: (id, voice, speed, pitch, split), test and validation variants included pro rata."""
    out = []
    pools = [("test", TEST_VARIANTS), ("validation", VAL_VARIANTS), ("train", TRAIN_VARIANTS)]
    total = sum(len(p) for _, p in pools)
    for split, pool in pools:
        k = max(1, round(n * len(pool) / total))
        for i in range(k):
            variant = pool[i % len(pool)]
            accent = ACCENTS[rng.randrange(len(ACCENTS))]
            speed, pitch = rng.randint(120, 210), rng.randint(25, 75)
            sid = "%s-%s-s%dp%d" % (accent, variant.lower(), speed, pitch)
            out.append((sid, "%s+%s" % (accent, variant), speed, pitch, split))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--speakers", type=int, default=60, help="speakers; each says every word once")
    ap.add_argument("--ctc", type=int, default=3000, help="digit-string utterances for CTC")
    ap.add_argument("--words", type=int, default=len(WORDS), help="use only the first N words (tests)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("make_spoken_words: espeak-ng is not installed (apt-get install espeak-ng, or scripts/install_deps.sh)")
    words = WORDS[:max(1, min(a.words, len(WORDS)))]
    rng = random.Random(a.seed)
    spk = speakers(a.speakers, rng)
    kws, ctc = os.path.join(a.out, "kws"), os.path.join(a.out, "ctc")
    jobs = []
    for sid, voice, speed, pitch, split in spk:
        for w in words:
            jobs.append(("kws", kws, sid, voice, speed, pitch, w, "%s/%s_nohash_0.wav" % (w, sid), a.seed))
    split_of = {s[0]: s[4] for s in spk}
    for k in range(a.ctc):
        sid, voice, speed, pitch, _ = spk[k % len(spk)]
        text = " ".join(rng.choice(DIGITS) for _ in range(rng.randint(2, 4)))
        jobs.append(("ctc", ctc, sid, voice, speed, pitch, text, "clips/%s_%d.wav" % (sid, k), a.seed))
    t0 = time.time()
    with multiprocessing.Pool(a.jobs) as pool:
        done = pool.map(job, jobs, chunksize=8)
    lists = {"validation": [], "test": []}
    tsv = {"train": [], "validation": [], "test": []}
    for kind, name, sid, text in done:
        split = split_of[sid]
        if kind == "kws" and split != "train":
            lists[split].append(name)
        if kind == "ctc":
            tsv[split].append("%s\t%s" % (name, text))
    with open(os.path.join(kws, "validation_list.txt"), "w") as f:
        f.write("".join(n + "\n" for n in sorted(lists["validation"])))
    with open(os.path.join(kws, "testing_list.txt"), "w") as f:
        f.write("".join(n + "\n" for n in sorted(lists["test"])))
    with open(os.path.join(ctc, "vocabulary.txt"), "w") as f:
        f.write("".join(w + "\n" for w in WORDS))
    for split, lines in tsv.items():
        with open(os.path.join(ctc, split + ".tsv"), "w") as f:
            f.write("".join(l + "\n" for l in sorted(lines)))
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    counts = {s: sum(1 for x in spk if x[4] == s) for s in ("train", "validation", "test")}
    with open(os.path.join(a.out, "README.txt"), "w") as f:
        f.write("Made by scripts/make_spoken_words.py %s --speakers %d --words %d --ctc %d --seed %d\n%s\n"
                "speakers: %s; keyword clips: %d; ctc utterances: %d\n"
                % (a.out, a.speakers, len(words), a.ctc, a.seed, version, counts, len(spk) * len(words), a.ctc))
    print("make_spoken_words: %d keyword clips (%d speakers: %s) and %d CTC utterances in %.1f s -> %s"
          % (len(spk) * len(words), len(spk), counts, a.ctc, time.time() - t0, a.out))


if __name__ == "__main__":
    main()
