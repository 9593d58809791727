#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/fuzz_*.cpp) for SECONDS each
# (default 20, what CI runs; longer by hand: scripts/fuzz.sh 600). Each starts
# from its committed seed corpus (tests/fuzz/corpus/<target>/) and the inputs
# that once crashed it (tests/fuzz/regressions/<target>/); what it learns goes
# to a scratch corpus that is thrown away unless FUZZ_KEEP=DIR is set. A crash
# leaves its input in ${FUZZ_OUT:-fuzz-out}/ and fails the run: commit it under
# tests/fuzz/regressions/<target>/ with the fix (test_fuzz_regressions replays it).
# Builds into ${ASAN_BUILD_DIR:-build-asan}, the same build as scripts/sanitize.sh.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-20}
shift || true
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
out=${FUZZ_OUT:-fuzz-out}
scripts/install_deps.sh --sanitize
export PATH=/usr/lib/llvm-14/bin:$PATH  # llvm-symbolizer: reports name functions, suppressions match
CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPW_CUDA=EMU -DPW_SANITIZE=address,undefined -DPW_FUZZ=ON >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target "${targets[@]}"
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/sanitizers/ubsan.supp}
failed=()
for t in "${targets[@]}"; do
  work=${FUZZ_KEEP:-$scratch}/$t
  mkdir -p "$work" "$scratch/tmp-$t"
  seeds=(tests/fuzz/corpus/$t)
  [ -d tests/fuzz/regressions/$t ] && seeds+=(tests/fuzz/regressions/$t)
  dict=()
  [ -f tests/fuzz/$t.dict ] && dict=(-dict=tests/fuzz/$t.dict)
  echo "fuzz: $t for ${secs}s"
  start=$(date +%s)
  # -rss_limit_mb / -malloc_limit_mb: a reader must refuse a header that asks
  # for more memory than this, not allocate it. -timeout: one input's limit.
  if TMPDIR=$scratch/tmp-$t "$BUILD_DIR/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$out/$t-" "${dict[@]}" \
      "$work" "${seeds[@]}" >"$out/$t.log" 2>&1; then
    echo "fuzz: $t: $(grep -E '^stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}') runs in $(( $(date +%s) - start ))s, no crash"
  else
    echo "fuzz: $t FAILED; the log is $out/$t.log, the input $out/$t-*:"
    tail -n 40 "$out/$t.log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}"
  exit 1
fi
