#!/usr/bin/env bash
# Training images/s of patchwork against PyTorch eager on the same model, batch,
# thread count and number of steps, printed as one table:
#   default  configs/fashion_mnist/simple_vit.yaml (batch 128)
#   vit-s    configs/imagenet/vit_s16.yaml at batch 8 (197 tokens, dim 384)
# Each side reports the median of --repeat timed runs after warmup; the two run
# one after the other, never at once. Not part of CI: it needs PyTorch
# (/opt/torchenv/bin/python, or $TORCH_PYTHON) and a quiet machine.
#
#   scripts/bench_vs_pytorch.sh [--threads T] [--steps N] [--repeat R] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=2 STEPS=30 REPEAT=3 VIT_STEPS=5
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
BUILD=${BUILD_DIR:-build}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --quick) STEPS=10 REPEAT=1 VIT_STEPS=2; shift ;;
    *) echo "usage: $0 [--threads T] [--steps N] [--repeat R] [--quick]" >&2; exit 2 ;;
  esac
done

if [[ ! -x $BUILD/patchwork ]]; then
  [[ -f $BUILD/build.ninja ]] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPW_CUDA=OFF >/dev/null
fi
ninja -C "$BUILD" patchwork >/dev/null
[[ -x $PY ]] || { echo "$0: no PyTorch python at $PY (set TORCH_PYTHON)" >&2; exit 1; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average$(uptime | sed 's/.*load average//')"
echo "threads $THREADS, median of $REPEAT runs; $(date -u '+%Y-%m-%d %H:%M UTC')"

# field NAME from a "RESULT k=v ..." line
field() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p"; }

rows=()
run_row() {  # label config steps warmup [--set k=v]...
  local label=$1 config=$2 steps=$3 warmup=$4
  shift 4
  local ours theirs
  ours=$("$BUILD/patchwork" bench train "$config" --threads "$THREADS" --steps "$steps" --warmup "$warmup" \
           --repeat "$REPEAT" --profile-steps 0 "$@")
  theirs=$("$PY" scripts/bench_vs_pytorch.py "$config" --threads "$THREADS" --steps "$steps" --warmup "$warmup" \
             --repeat "$REPEAT" "$@")
  local oi ti op tp
  oi=$(field images_per_s <<<"$ours"); ti=$(field images_per_s <<<"$theirs")
  op=$(field params <<<"$ours"); tp=$(field params <<<"$theirs")
  rows+=("$(printf '%-8s %-58s %9s %9s %11.2f %11.2f %6.2fx' "$label" "$config $*" "$op" "$tp" "$oi" "$ti" \
            "$(awk -v a="$oi" -v b="$ti" 'BEGIN { print a / b }')")")
  echo "$label: patchwork $oi images/s ($op params), pytorch $ti images/s ($tp params)"
}

run_row default configs/fashion_mnist/simple_vit.yaml "$STEPS" 3
run_row vit-s configs/imagenet/vit_s16.yaml "$VIT_STEPS" 2 --set train.batch_size=8

echo
printf '%-8s %-58s %9s %9s %11s %11s %7s\n' row config params "(torch)" "ours img/s" "torch img/s" ratio
for r in "${rows[@]}"; do echo "$r"; done
