#!/usr/bin/env bash
# What ran where, kernel by kernel (docs/cuda.md): runs every gpu-labelled suite of an
# EMU build with EMU_KERNEL_LOG, then prints, per .cu file, each __global__ kernel with
# its launch count (0 = has not run on the CPU backend) and the library calls made.
# Usage: scripts/cuda_coverage.sh [EMU_BUILD_DIR (default build-emu)]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-emu}
[ -f "$dir/CMakeCache.txt" ] || { echo "cuda_coverage.sh: no build in $dir; build with -DPW_CUDA=EMU first" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd "$dir" && EMU_KERNEL_LOG="$log" ctest -L gpu -j "${JOBS:-2}" >/dev/null) || echo "cuda_coverage.sh: some gpu suites failed (counts below still hold)" >&2
python3 - "$log" <<'PY'
import re, sys, glob, collections
counts = collections.Counter()
for line in open(sys.argv[1]):
    name, _, n = line.rstrip("\n").rpartition(" ")
    if name: counts[re.sub(r"<.*", "", name)] += int(n)  # template arguments dropped
kernels = {}
for f in sorted(glob.glob("runtime/**/*.cu", recursive=True) + glob.glob("kernels/**/*.cu", recursive=True)):
    names = re.findall(r"__global__\s+(?:__launch_bounds__\([^)]*\)\s*)?void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)", open(f).read())
    if names: kernels[f] = list(dict.fromkeys(names))
print("| file | kernels (launches in one `ctest -L gpu` run of the EMU build) |")
print("|---|---|")
# A file that launches through a helper taking the kernel as a pointer `k` (k<<<...>>>)
# logs those launches under the name "k": they are counted together, not per kernel.
via = {f for f in kernels if re.search(r"\(\*k\)\(", open(f).read())}
never = []
for f, names in kernels.items():
    def cell(k):
        n = counts.get(k, 0)
        return f"{k} ({n})" if n or f not in via else f"{k} (via launch())"
    print(f"| {f} | " + ", ".join(cell(k) for k in names) + " |")
    never += [k for k in names if counts.get(k, 0) == 0 and f not in via]
if via:
    print(f"\n(via launch()): launched through a helper that takes the kernel as a pointer, so the "
          f"emulator logs them together as 'k': {counts.get('k', 0)} launches in {', '.join(sorted(via))}.")
libs = sorted(k for k in counts if k.startswith(("cublas", "cudnn")))
print("\nLibrary calls: " + ", ".join(f"{k} ({counts[k]})" for k in libs))
print("Kernels that did not run: " + (", ".join(never) if never else "none"))
PY
