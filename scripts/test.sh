#!/usr/bin/env bash
# The test command: installs what is missing, builds (Release, -j2) and runs the
# whole suite with ctest; then builds the CUDA sources for the CPU execution
# backend (PW_CUDA=EMU, into build-emu) and runs every gpu-labelled suite there,
# so the CUDA kernels are executed and checked on every change, not skipped.
# With SANITIZE=1, last, the whole suite again under ASan+UBSan and each fuzz
# target for FUZZ_SECONDS (docs/sanitizers.md). Off by default for now: the
# sanitizer build adds ~10-15 min on 2 cores, more than CI's budget holds beside
# the other two builds; the fuzz corpora and regressions replay in every build
# (test_fuzz_regressions).
# Exits non-zero on any failure, and when an EMU suite reports itself skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${JOBS:-2}")

EMU_DIR=${EMU_BUILD_DIR:-build-emu}
cmake -S . -B "$EMU_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPW_CUDA=EMU >/dev/null
# Only the library and the gpu suites (the CPU suites already ran above).
gpu_targets=(test_cuda_emu)
for f in tests/test_*_cuda.cpp; do gpu_targets+=("$(basename "$f" .cpp)"); done
cmake --build "$EMU_DIR" -j "${JOBS:-2}" --target "${gpu_targets[@]}"
cd "$EMU_DIR"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ctest -L gpu --no-tests=error --output-on-failure -j "${JOBS:-2}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q "(Skipped)" "$log"; then
  echo "test.sh: a gpu suite reported 'skipped' under PW_CUDA=EMU, where cuda::available() is true" >&2
  exit 1
fi
[ "$rc" -eq 0 ] || exit "$rc"
cd - >/dev/null
if [ "${SANITIZE:-0}" != 0 ]; then
  scripts/sanitize.sh
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
