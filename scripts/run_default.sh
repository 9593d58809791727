#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is missing (the
# Fashion-MNIST package included), builds, trains the default config,
# evaluates the final checkpoint and prints where the run folder is.
# Usage: scripts/run_default.sh [RUN_DIR] [--set section.key=value]...
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --data
scripts/build.sh
RUN_DIR=${1:-runs/fashion_mnist-simple_vit-$(date +%Y%m%d-%H%M%S)}
shift || true
CONFIG=configs/fashion_mnist/simple_vit.yaml
./build/patchwork train "$CONFIG" --out "$RUN_DIR" "$@"
./build/patchwork eval "$CONFIG" --checkpoint "$RUN_DIR" "$@"
echo "run folder: $RUN_DIR"
