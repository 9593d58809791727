#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages patchwork needs that are missing.
# Usage: scripts/install_deps.sh [--data|--sanitize]   (--data adds the Fashion-MNIST data set;
#        --sanitize clang with its sanitizer/libFuzzer runtimes and OpenMP, for scripts/sanitize.sh and fuzz.sh)
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libdnnl-dev ocl-icd-opencl-dev libyaml-cpp-dev doctest-dev libstb-dev zlib1g-dev)
# The CPU execution backend of the CUDA sources (PW_CUDA=EMU, built by scripts/test.sh):
# boost.context fibers run the CUDA threads; python3 runs the .cu -> .cpp launch rewrite.
pkgs+=(libboost-context-dev python3)
# Data-parallel training (dist/, docs/distributed.md): OpenMPI's headers and library
# (-DPW_MPI=AUTO finds them) and mpirun (the tests launch 2 and 3 ranks over loopback).
pkgs+=(libopenmpi-dev openmpi-bin)
# The spoken-word data set generator (scripts/make_spoken_words.py) and its test in test_audio.
pkgs+=(espeak-ng)
[ "${1:-}" = "--data" ] && pkgs+=(dataset-fashion-mnist)
# llvm-14: llvm-symbolizer, without which the sanitizers cannot name functions and their
# suppression files (tests/sanitizers/) match nothing.
[ "${1:-}" = "--sanitize" ] && pkgs+=(clang-14 libclang-rt-14-dev libomp-14-dev llvm-14)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
