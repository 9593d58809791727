#!/usr/bin/env bash
# Mutation check of the CPU execution backend (PW_CUDA=EMU): deliberately broken
# kernels must make their gpu suite fail. Each mutation edits one CUDA source in
# place (restored on exit, whatever happens), rebuilds one suite in an EMU build
# dir, and runs it under each scheduling order (EMU_SCHED) until one fails:
# CAUGHT (with the order and the first error line) or MISSED. Exits 1 if any
# mutation is missed. The result of the last run is recorded in docs/cuda.md.
# Usage: scripts/cuda_mutation_check.sh [BUILD_DIR]   (default build-mutation)
set -euo pipefail
cd "$(dirname "$0")/.."
BD=${1:-build-mutation}
cmake -S . -B "$BD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPW_CUDA=EMU >/dev/null

# name | file | exact text to replace (first occurrence) | replacement | suite | doctest filter
# (Not here, because no value check can see them: block_max's barrier before warp 0's
# read, where softmax uses the max only as a stabiliser, and block_sum's first barrier,
# which guards only a previous block_sum on the same buffer; see docs/cuda.md.)
MUTATIONS=(
  "block_sum: the barrier between the per-warp writes and warp 0's read removed (softmax)|runtime/cuda/common.cuh|  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {  // only warp 0 reads|  if (lane == 0) shared[warp] = v;
  if (warp == 0) {  // only warp 0 reads|test_ops_cuda|*"
  "softmax_rows_fwd: thread 1 returns before the block reductions (skips their barriers)|kernels/softmax/softmax_cuda.cu|  m = block_max(m, smax);|  if (threadIdx.x == 1) return;
  m = block_max(m, smax);|test_ops_cuda|*"
  "flash forward: the barrier after loading K and V tiles removed|kernels/attention/flash_attention_cuda.cu|    load_rows<T, BK, HD, LDT>(sV, v + head, k0, N);
    __syncthreads();|    load_rows<T, BK, HD, LDT>(sV, v + head, k0, N);|test_flash_cuda|flash attention CUDA float32*"
  "flash forward: the barrier before o += p v removed|kernels/attention/flash_attention_cuda.cu|    __syncthreads();
    mma_smem<BQ, HD, BK, false, false>(sO, LDO, sP, LDP, sV, LDT, true);  // o += p v|    mma_smem<BQ, HD, BK, false, false>(sO, LDO, sP, LDP, sV, LDT, true);  // o += p v|test_flash_cuda|flash attention CUDA float32*"
  "flash forward: thread 37 leaves the key loop early (skips its barriers)|kernels/attention/flash_attention_cuda.cu|    load_rows<T, BK, HD, LDT>(sK, k + head, k0, N);|    if (threadIdx.x == 37 && k0 > 0) break;
    load_rows<T, BK, HD, LDT>(sK, k + head, k0, N);|test_flash_cuda|flash attention CUDA float32*"
)
ORDERS=(fwd lo hi rev rand)

backup=""
restore() { if [ -n "$backup" ]; then cp "$backup" "$target" && rm -f "$backup"; backup=""; fi; }
trap restore EXIT INT TERM

missed=0
for m in "${MUTATIONS[@]}"; do
  IFS='|' read -r name target old new suite filter <<<"$(printf '%s' "$m" | tr '\n' '\001')"
  old=${old//$'\001'/$'\n'}; new=${new//$'\001'/$'\n'}
  backup=$(mktemp)
  cp "$target" "$backup"
  OLD="$old" NEW="$new" python3 - "$target" <<'EOF'
import os, sys
p = sys.argv[1]
s = open(p).read()
old, new = os.environ["OLD"], os.environ["NEW"]
if old not in s:
    sys.exit(f"mutation anchor not found in {p}:\n{old}")
open(p, "w").write(s.replace(old, new, 1))
EOF
  if ! cmake --build "$BD" -j "${JOBS:-2}" --target "$suite" >/dev/null 2>&1; then
    echo "CAUGHT (does not build): $name"
    restore
    continue
  fi
  result="MISSED"
  for order in "${ORDERS[@]}"; do
    out=$(cd "$BD" && EMU_SCHED=$order timeout 900 "./$suite" -tc="$filter" 2>&1) && continue
    first=$(printf '%s\n' "$out" | grep -m1 -E "cuda-emu|ERROR|CRASHED" || true)
    result="CAUGHT (EMU_SCHED=$order): ${first:0:240}"
    break
  done
  [ "$result" = "MISSED" ] && missed=$((missed + 1))
  echo "$result: $name"
  restore
done
# Leave the build matching the unmutated sources.
cmake --build "$BD" -j "${JOBS:-2}" --target test_ops_cuda test_flash_cuda >/dev/null 2>&1 || true
echo "cuda_mutation_check: $((${#MUTATIONS[@]} - missed)) of ${#MUTATIONS[@]} mutations caught"
[ "$missed" -eq 0 ]
