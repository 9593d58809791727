#!/usr/bin/env bash
# The test command (CI: .ci/run). Installs what is missing, builds (Release, -j2) and
# runs the whole suite with ctest (the gpu suites skip there: no GPU), then:
#   SANITIZE=1 (the default; what CI runs):
#     scripts/sanitize.sh  everything again with clang under ASan+UBSan, PW_CUDA=EMU: the
#                          CPU suites sanitized and every gpu suite executing the CUDA
#                          kernels on the CPU execution backend under ASan (a gpu suite
#                          that reports itself skipped fails the run);
#     scripts/fuzz.sh N    each libFuzzer target for N = FUZZ_SECONDS (20) seconds.
#   SANITIZE=0 (quicker, by hand): the CUDA sources built by g++ for the CPU execution
#     backend (PW_CUDA=EMU, build-emu) and every gpu-labelled suite run there.
# Exits non-zero on any failure. docs/sanitizers.md, docs/cuda.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${JOBS:-2}")

if [ "${SANITIZE:-1}" != 0 ]; then
  scripts/sanitize.sh
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
  exit 0
fi

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
exit "$rc"
