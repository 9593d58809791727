#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Builds (clang, CPU only, -fsanitize=address,undefined, plus the libFuzzer
# targets, which share the build: scripts/fuzz.sh) into ${ASAN_BUILD_DIR:-build-asan}
# and runs ctest there. Any sanitizer report fails the run. docs/sanitizers.md
# says what runs and what it found.
# Usage: scripts/sanitize.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
scripts/install_deps.sh --sanitize
CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPW_CUDA=OFF -DPW_SANITIZE=address,undefined -DPW_FUZZ=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
# detect_leaks: on (lsan.supp is empty: libomp and oneDNN run clean). UBSan is
# built recoverable so that ubsan.supp works; halt_on_error stops at any other report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/sanitizers/ubsan.supp}
cd "$BUILD_DIR"
ctest --output-on-failure -j "${JOBS:-2}" --timeout "${TEST_TIMEOUT:-900}"
