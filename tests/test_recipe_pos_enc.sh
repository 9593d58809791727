#!/usr/bin/env bash
# ctest: scripts/compare_pos_enc.sh end to end on tiny data, so the recipe that writes
# docs/pos_enc*.md keeps working: DATASET cifar10 on a synthetic set in CIFAR-10's exact binary
# format (scripts/cifar_subset.py --synthetic), fashion_mnist on the real files when
# Debian's dataset-fashion-mnist is installed (else exit 77: ctest reports it skipped).
# On the CPU (train.device cpu) in every build: the script is under test, not a device, and
# the EMU build's emulated CUDA under ASan took over 10 min for these three tiny runs.
#   tests/test_recipe_pos_enc.sh BUILD_DIR cifar10|fashion_mnist
set -euo pipefail
BUILD=$1 DATASET=$2
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
case "$DATASET" in
  cifar10) python3 scripts/cifar_subset.py --synthetic "$TMP/cifar" 64 32; DATA=$TMP/cifar NAME=CIFAR-10 ;;
  fashion_mnist) DATA=/usr/share/datasets/fashion-mnist NAME=Fashion-MNIST
    [[ -f $DATA/t10k-images-idx3-ubyte.gz ]] || { echo "SKIPPED: no Fashion-MNIST at $DATA (apt-get install dataset-fashion-mnist)"; exit 77; } ;;
esac
scripts/compare_pos_enc.sh --build "$BUILD" --dataset "$DATASET" --data "$DATA" --smoke --epochs 1 \
  --train-subset 64 --test-subset 32 --only none,swin,rope2d --out "$TMP/grid" --doc "$TMP/doc.md" \
  --set train.threads=1 --set train.device=cpu
# three rows: a parameter count, two accuracies, images/s ("-": no step was logged at this size)
rows=$(grep -cE '^\| (none|swin|rope2d) \| [0-9,]+ \| [0-9.]+% \| [0-9.]+% \| ([0-9]+|-) \|' "$TMP/doc.md" || true)
[[ $rows == 3 ]] || { echo "FAIL: expected 3 result rows in the doc, got $rows:"; cat "$TMP/doc.md"; exit 1; }
grep -q "on $NAME" "$TMP/doc.md" ||
  { echo "FAIL: the doc does not name the data set"; exit 1; }
for r in none swin rope2d; do
  [[ -f $TMP/grid/runs/$r/metrics.jsonl ]] || { echo "FAIL: no metrics for $r"; exit 1; }
done
echo "PASS: compare_pos_enc.sh --dataset $DATASET: 3 encodings trained, evaluated at two sizes, doc written"
