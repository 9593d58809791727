#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, with the
# CUDA sources built for the CPU execution backend (PW_CUDA=EMU), so one build checks
# the CPU code, the CUDA kernels as they execute on the emulator (out-of-bounds global
# accesses land in ASan-checked host allocations) and the libFuzzer targets
# (scripts/fuzz.sh shares the build). Builds with clang into ${ASAN_BUILD_DIR:-build-asan}
# and runs ctest there: the CPU suites, then the gpu-labelled suites, which must all run
# (one that reports itself skipped fails the run). Any sanitizer report fails the run.
# docs/sanitizers.md says what runs and what it found. CI runs this (scripts/test.sh).
# Usage: scripts/sanitize.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
scripts/install_deps.sh --sanitize
export PATH=/usr/lib/llvm-14/bin:$PATH  # llvm-symbolizer: reports name functions, suppressions match
CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPW_CUDA=EMU -DPW_SANITIZE=address,undefined -DPW_FUZZ=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
# detect_leaks: on (lsan.supp is empty: libomp and oneDNN run clean). UBSan is
# built recoverable so that ubsan.supp works; halt_on_error stops at any other report.
asan_common=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/sanitizers/ubsan.supp}
cd "$BUILD_DIR"
# The CPU suites, with stack-use-after-return detection. The dist suite (mpirun) runs
# in the normal build only: OpenMPI's own allocations would need a suppression list.
ASAN_OPTIONS=${ASAN_OPTIONS:-$asan_common:detect_stack_use_after_return=1} \
  ctest --output-on-failure -j "${JOBS:-2}" --timeout "${TEST_TIMEOUT:-900}" -LE 'gpu|dist'
# The gpu suites on the emulator. Its CUDA threads are fibers (boost.context): ASan's
# fake stacks for use-after-return cost ~50x there, so that one check is off. Crash
# signals go to the emulator's handler, which names the kernel, block and thread
# (ASan's would report the fault without them; out-of-bounds reads and writes are
# still ASan's, caught before any signal).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-$asan_common:detect_stack_use_after_return=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0} \
  ctest -L gpu --no-tests=error --output-on-failure -j "${JOBS:-2}" --timeout "${TEST_TIMEOUT:-900}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q "(Skipped)" "$log"; then
  echo "sanitize.sh: a gpu suite reported 'skipped' under PW_CUDA=EMU, where cuda::available() is true" >&2
  exit 1
fi
exit "$rc"
